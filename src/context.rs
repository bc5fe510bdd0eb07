//! Who a flag is evaluated for (SPEC §3).

/// The attributes of one user or request. Properties are kept sorted by name, so lookups are a
/// binary search and two contexts with the same content compare and hash equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EvalContext {
    pub user_id: String,
    pub email: String,
    pub plan: String,
    pub country: String,
    properties: Vec<(String, String)>,
}

/// Which attribute a condition reads, resolved once when the config is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    UserId,
    Email,
    Plan,
    Country,
    Property(Box<str>),
}

impl Attribute {
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        match name {
            "user_id" => Self::UserId,
            "email" => Self::Email,
            "plan" => Self::Plan,
            "country" => Self::Country,
            other => Self::Property(other.into()),
        }
    }
}

impl EvalContext {
    #[must_use]
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            ..Self::default()
        }
    }

    /// Builds a context; when a property name repeats, the last value wins (as in a dict).
    #[must_use]
    pub fn with_fields(
        user_id: String,
        email: String,
        plan: String,
        country: String,
        properties: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut properties: Vec<(String, String)> = properties.into_iter().collect();
        // A stable sort keeps input order among equal names, so keeping the last of each run is "last wins".
        properties.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deduped: Vec<(String, String)> = Vec::with_capacity(properties.len());
        for (name, value) in properties {
            match deduped.last_mut() {
                Some(last) if last.0 == name => last.1 = value,
                _ => deduped.push((name, value)),
            }
        }
        Self {
            user_id,
            email,
            plan,
            country,
            properties: deduped,
        }
    }

    #[must_use]
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        match self.properties.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
            Ok(i) => self.properties[i].1 = value,
            Err(i) => self.properties.insert(i, (name, value)),
        }
        self
    }

    /// The properties, sorted by name.
    #[must_use]
    pub fn properties(&self) -> &[(String, String)] {
        &self.properties
    }

    #[must_use]
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.properties[i].1.as_str())
    }

    /// The value a condition sees; a missing attribute reads as `""`.
    #[must_use]
    pub fn attribute(&self, attribute: &Attribute) -> &str {
        match attribute {
            Attribute::UserId => &self.user_id,
            Attribute::Email => &self.email,
            Attribute::Plan => &self.plan,
            Attribute::Country => &self.country,
            Attribute::Property(name) => self.property(name).unwrap_or(""),
        }
    }

    /// Looks an attribute up by name, as a condition would.
    #[must_use]
    pub fn get(&self, name: &str) -> &str {
        match name {
            "user_id" => &self.user_id,
            "email" => &self.email,
            "plan" => &self.plan,
            "country" => &self.country,
            other => self.property(other).unwrap_or(""),
        }
    }
}

//! Plugin registries: one explicit list per plugin kind, keyed by a
//! snake_case `kind` name.
//!
//! A plugin is built from its parameters, given as a JSON object (an
//! experiment file's RON converts to it), and a context (the cohort, for
//! plugins that resolve codes). A researcher adds a plugin by registering a
//! builder; unknown and duplicate kinds are errors that list the known ones.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::CoreError;

type Builder<P, C> = Box<dyn Fn(&Value, &C) -> Result<Box<P>, String> + Send + Sync>;

/// Builders of plugins of one kind (`P` is the trait object type).
pub struct Registry<P: ?Sized, C> {
    what: &'static str,
    entries: Vec<(String, Builder<P, C>)>,
}

impl<P: ?Sized, C> fmt::Debug for Registry<P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("what", &self.what)
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl<P: ?Sized, C> Registry<P, C> {
    /// An empty registry of `what` plugins (`"reward term"`, `"start list"`).
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            entries: Vec::new(),
        }
    }

    /// Registers a builder under `kind`; a kind can be registered once.
    pub fn register(
        &mut self,
        kind: &str,
        build: impl Fn(&Value, &C) -> Result<Box<P>, String> + Send + Sync + 'static,
    ) -> Result<(), CoreError> {
        if self.entries.iter().any(|(k, _)| k == kind) {
            return Err(CoreError::Invalid(format!(
                "{} kind `{kind}` is registered twice",
                self.what
            )));
        }
        self.entries.push((kind.to_string(), Box::new(build)));
        Ok(())
    }

    /// The registered kinds, in registration order.
    pub fn kinds(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    pub fn contains(&self, kind: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == kind)
    }

    /// Builds a plugin of `kind` from its parameters (a JSON object, `null`
    /// for none).
    pub fn build(&self, kind: &str, params: &Value, context: &C) -> Result<Box<P>, CoreError> {
        let (_, build) = self.entries.iter().find(|(k, _)| k == kind).ok_or_else(|| {
            CoreError::Invalid(format!(
                "unknown {} kind `{kind}`{}; known kinds: {}",
                self.what,
                crate::suggest::did_you_mean(kind, self.kinds()),
                self.kinds().join(", ")
            ))
        })?;
        build(params, context).map_err(|e| CoreError::Invalid(format!("{} `{kind}`: {e}", self.what)))
    }
}

/// Parameters as a typed config; `null` reads as an empty object, so configs
/// with every field defaulted need no parameters.
pub fn params<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    let value = if value.is_null() {
        Value::Object(Default::default())
    } else {
        value.clone()
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let at = e.path().to_string();
        if at == "." {
            e.inner().to_string()
        } else {
            format!("field `{at}`: {}", e.inner())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Greeter {
        fn greet(&self) -> String;
    }
    struct Hello(String);
    impl Greeter for Hello {
        fn greet(&self) -> String {
            format!("hello {}", self.0)
        }
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct HelloConfig {
        #[serde(default)]
        name: String,
    }

    fn registry() -> Registry<dyn Greeter, ()> {
        let mut r: Registry<dyn Greeter, ()> = Registry::new("greeter");
        r.register("hello", |p, _| {
            let c: HelloConfig = params(p)?;
            Ok(Box::new(Hello(c.name)) as Box<dyn Greeter>)
        })
        .unwrap();
        r
    }

    #[test]
    fn builds_known_kinds_and_names_the_unknown() {
        let r = registry();
        let g = r
            .build("hello", &serde_json::json!({"name": "ward"}), &())
            .unwrap();
        assert_eq!(g.greet(), "hello ward");
        assert_eq!(r.build("hello", &Value::Null, &()).unwrap().greet(), "hello ");
        let err = r.build("helo", &Value::Null, &()).err().unwrap().to_string();
        assert!(
            err.contains("unknown greeter kind `helo`; did you mean `hello`?; known kinds: hello"),
            "{err}"
        );
        let err = r
            .build("hello", &serde_json::json!({"nam": 1}), &())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown field `nam`"), "{err}");
    }

    #[test]
    fn duplicates_are_refused() {
        let mut r = registry();
        let err = r
            .register("hello", |_, _| {
                Ok(Box::new(Hello(String::new())) as Box<dyn Greeter>)
            })
            .unwrap_err();
        assert!(err.to_string().contains("registered twice"));
    }
}

//! Services and their typed endpoints.

use std::fmt;
use std::marker::PhantomData;

use crate::code::NoCode;

/// A component's request API: its NATS micro service name and the subject
/// prefix of its endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Service {
    /// The micro service name, which is also the component's name and
    /// binary, e.g. `cim-ius`.
    pub name: &'static str,
    /// The prefix of every endpoint's subject, e.g. `cim.service.ius`.
    pub prefix: &'static str,
}

impl Service {
    /// A service `name` whose endpoints are `<prefix>.<endpoint>`.
    pub const fn new(name: &'static str, prefix: &'static str) -> Self {
        Self { name, prefix }
    }

    /// The endpoint `<prefix>.<name>` taking `Req`, answering `Resp`, and
    /// failing with the codes `C`. A name ending in `.*` takes one more
    /// subject token from the caller ([`Endpoint::subject_for`]).
    pub const fn endpoint<Req, Resp, C>(self, name: &'static str) -> Endpoint<Req, Resp, C> {
        Endpoint { service: self, name, _types: PhantomData }
    }
}

/// One request subject with its types: declared once in a component's API
/// crate, used by the service to serve it and by [`crate::Caller`] to call
/// it, so both sides agree on the subject and the types or do not compile.
pub struct Endpoint<Req, Resp, C = NoCode> {
    service: Service,
    name: &'static str,
    _types: PhantomData<fn(Req) -> (Resp, C)>,
}

impl<Req, Resp, C> Clone for Endpoint<Req, Resp, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Req, Resp, C> Copy for Endpoint<Req, Resp, C> {}

impl<Req, Resp, C> fmt::Debug for Endpoint<Req, Resp, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint").field("service", &self.service.name).field("subject", &self.subject()).finish()
    }
}

impl<Req, Resp, C> Endpoint<Req, Resp, C> {
    /// The service it belongs to.
    pub const fn service(&self) -> Service {
        self.service
    }

    /// Its name below the service's prefix, e.g. `units.create`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Its subject, e.g. `cim.service.ius.units.create` (ending in `*` when
    /// it takes a token).
    pub fn subject(&self) -> String {
        format!("{}.{}", self.service.prefix, self.name)
    }

    /// Whether its last subject token is the caller's (`.*`).
    pub fn takes_token(&self) -> bool {
        self.name.ends_with(".*")
    }

    /// The subject with `token` as its last token; `None` unless the
    /// endpoint takes a token and `token` is one literal subject token.
    pub fn subject_for(&self, token: &str) -> Option<String> {
        let stem = self.name.strip_suffix(".*")?;
        is_literal_token(token).then(|| format!("{}.{stem}.{token}", self.service.prefix))
    }

    /// The caller's token in a subject this endpoint received, e.g. the
    /// component name in `…components.register.cim-ius`.
    pub fn token_of<'s>(&self, subject: &'s str) -> Option<&'s str> {
        let stem = self.name.strip_suffix(".*")?;
        let rest = subject.strip_prefix(self.service.prefix)?.strip_prefix('.')?.strip_prefix(stem)?;
        rest.strip_prefix('.').filter(|token| is_literal_token(token))
    }
}

/// The body of a request that carries nothing: `{}` (any field is refused).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// A subject token that is not a wildcard: printable ASCII without `.`, `*`
/// or `>`, not empty.
pub fn is_literal_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: Service = Service::new("cim-test", "cim.service.test");
    const PLAIN: Endpoint<(), ()> = SERVICE.endpoint("things.list");
    const PINNED: Endpoint<(), ()> = SERVICE.endpoint("things.register.*");

    #[test]
    fn subjects_and_tokens() {
        assert_eq!(PLAIN.subject(), "cim.service.test.things.list");
        assert!(!PLAIN.takes_token());
        assert_eq!(PLAIN.subject_for("x"), None);
        assert_eq!(PINNED.subject(), "cim.service.test.things.register.*");
        assert_eq!(PINNED.subject_for("cim-ius").as_deref(), Some("cim.service.test.things.register.cim-ius"));
        for bad in ["", "a.b", "*", ">", "a b"] {
            assert_eq!(PINNED.subject_for(bad), None, "{bad:?}");
        }
        assert_eq!(PINNED.token_of("cim.service.test.things.register.cim-ius"), Some("cim-ius"));
        assert_eq!(PINNED.token_of("cim.service.test.things.register.a.b"), None);
        assert_eq!(PINNED.token_of("cim.service.test.things.registered.x"), None);
        assert_eq!(PINNED.token_of("cim.service.other.things.register.x"), None);
    }

    #[test]
    fn an_empty_body_is_an_object() {
        assert_eq!(serde_json::to_string(&Empty {}).expect("encode"), "{}");
        assert_eq!(serde_json::from_str::<Empty>("{}").expect("decode"), Empty {});
        assert!(serde_json::from_str::<Empty>(r#"{"ignored": 1}"#).is_err());
    }
}

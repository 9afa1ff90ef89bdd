//! Error codes: each API declares its own as an enum with [`codes!`]
//! (crate::codes), and every API may also answer with a [`CommonCode`]. On
//! the wire a code is its `snake_case` string; [`ErrorCode`] is what a
//! client decodes it into, so nobody compares code strings.

use std::fmt;
use std::hash::Hash;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An API's error codes. Implemented by [`codes!`](crate::codes).
pub trait Code: Copy + Eq + Hash + fmt::Debug + Send + Sync + 'static {
    /// Every code, in declaration order.
    const ALL: &'static [Self];

    /// The code on the wire, e.g. `version_conflict`.
    fn as_str(self) -> &'static str;

    /// Its HTTP-like status: 400 bad input, 403 refused, 404 unknown, 409
    /// conflict, 413 too large, 422 refused by a rule, 500 internal, 503
    /// unavailable.
    fn status(self) -> u16;

    /// The code a wire string names, if it is one of [`Code::ALL`].
    fn parse(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == code)
    }
}

/// Declares an API's error-code enum and its [`Code`] implementation:
///
/// ```
/// cim_wire::codes! {
///     /// Errors of the example API.
///     pub enum ExampleCode {
///         /// No such thing.
///         UnknownThing = ("unknown_thing", 404),
///     }
/// }
/// use cim_wire::Code;
/// assert_eq!(ExampleCode::parse("unknown_thing"), Some(ExampleCode::UnknownThing));
/// assert_eq!(ExampleCode::UnknownThing.status(), 404);
/// ```
#[macro_export]
macro_rules! codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = ($text:literal, $status:literal) ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$variant_meta])* $variant ),*
        }

        impl $crate::Code for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),*];

            fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }

            fn status(self) -> u16 {
                match self { $(Self::$variant => $status),* }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::Code::as_str(*self))
            }
        }
    };
}

crate::codes! {
    /// Codes any service may answer with, whatever its API.
    pub enum CommonCode {
        /// The body is not what the endpoint takes.
        BadRequest = ("bad_request", 400),
        /// The caller may not do this (e.g. register another component).
        Forbidden = ("forbidden", 403),
        /// The request is larger than the service accepts.
        PayloadTooLarge = ("payload_too_large", 413),
        /// The service failed.
        Internal = ("internal", 500),
        /// A dependency failed; retry later.
        Unavailable = ("unavailable", 503),
    }
}

/// The codes of an API that has none of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoCode {}

impl Code for NoCode {
    const ALL: &'static [Self] = &[];

    fn as_str(self) -> &'static str {
        match self {}
    }

    fn status(self) -> u16 {
        match self {}
    }
}

impl fmt::Display for NoCode {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

/// A code as a client of API `C` decodes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode<C> {
    /// One of the API's own codes.
    Api(C),
    /// A code every service shares.
    Common(CommonCode),
    /// A code this client does not know: a newer service, or another API's
    /// error passed through.
    Unknown(String),
}

impl<C: Code> ErrorCode<C> {
    /// Decodes a wire code: the API's own first, then the common ones.
    pub fn parse(code: &str) -> Self {
        C::parse(code)
            .map(Self::Api)
            .or_else(|| CommonCode::parse(code).map(Self::Common))
            .unwrap_or_else(|| Self::Unknown(code.to_owned()))
    }

    /// The code on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Api(code) => code.as_str(),
            Self::Common(code) => code.as_str(),
            Self::Unknown(code) => code,
        }
    }

    /// The status the code implies (500 for an unknown code).
    pub fn status(&self) -> u16 {
        match self {
            Self::Api(code) => code.status(),
            Self::Common(code) => code.status(),
            Self::Unknown(_) => 500,
        }
    }

    /// The API's own code, if it is one.
    pub fn api(&self) -> Option<C> {
        match self {
            Self::Api(code) => Some(*code),
            _ => None,
        }
    }
}

impl<C: Code> fmt::Display for ErrorCode<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<C: Code> From<CommonCode> for ErrorCode<C> {
    fn from(code: CommonCode) -> Self {
        Self::Common(code)
    }
}

impl<C: Code> Serialize for ErrorCode<C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de, C: Code> Deserialize<'de> for ErrorCode<C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::codes! {
        enum TestCode {
            Conflict = ("version_conflict", 409),
        }
    }

    #[test]
    fn decodes_api_codes_then_common_ones_then_keeps_the_rest() {
        assert_eq!(ErrorCode::<TestCode>::parse("version_conflict"), ErrorCode::Api(TestCode::Conflict));
        assert_eq!(ErrorCode::<TestCode>::parse("bad_request"), ErrorCode::Common(CommonCode::BadRequest));
        assert_eq!(ErrorCode::<TestCode>::parse("brand_new"), ErrorCode::Unknown("brand_new".to_owned()));
        assert_eq!(ErrorCode::<NoCode>::parse("version_conflict").status(), 500);
        let json = serde_json::to_string(&ErrorCode::Api(TestCode::Conflict)).expect("encode");
        assert_eq!(json, r#""version_conflict""#);
        assert_eq!(
            serde_json::from_str::<ErrorCode<TestCode>>(&json).expect("decode"),
            ErrorCode::Api(TestCode::Conflict)
        );
    }

    #[test]
    fn common_codes_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        assert!(CommonCode::ALL.iter().all(|code| seen.insert(code.as_str())));
    }
}

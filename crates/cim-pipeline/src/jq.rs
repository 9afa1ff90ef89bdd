//! jq programs, compiled and run with jaq (`jaq-core`, `jaq-std`,
//! `jaq-json`): the language of filters, transforms and every expression in
//! a definition.
//!
//! Programs are compiled once, when a definition is put; a program that
//! does not compile is refused with its position (line and column). Filters
//! that would make a run depend on anything but its input are left out of
//! the library, so that a redelivered input produces the same outputs: `now`,
//! `env`/`$ENV`, `input`/`inputs`, `debug`, `stderr`, `halt`, `halt_error`,
//! `input_filename`, `$__loc__`, `localtime`, `mktime` and the like are
//! unknown filters here.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

type Data = data::JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// Native filters left out: they read the clock, the environment, other
/// inputs, or write to the process's output.
const LEFT_OUT: &[&str] = &[
    "now",
    "env",
    "input",
    "inputs",
    "debug",
    "stderr",
    "halt",
    "halt_error",
    "input_filename",
    "localtime",
    "mktime",
    "gmtime",
    "strflocaltime",
    "get_search_list",
    "get_prog_origin",
    "get_jq_origin",
    "input_line_number",
    "debug_empty",
    "stderr_empty",
];

/// The default of `[pipeline] max_value_bytes`.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 4 * 1024 * 1024;

/// The largest value one evaluation may produce, bytes (see [`set_max_value_bytes`]).
static MAX_VALUE_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_VALUE_BYTES);

/// Bounds what one evaluation of any program may produce: its outputs
/// together, measured as JSON (approximately: strings, numbers' text, keys,
/// two bytes per array or object); more is a [`RunError`], so a program that
/// builds a runaway value fails its input instead of the engine. It bounds
/// output size, not time: a program that loops without producing a value
/// is not stopped.
pub fn set_max_value_bytes(bytes: usize) {
    MAX_VALUE_BYTES.store(bytes, Ordering::Relaxed);
}

/// A compiled jq program.
pub struct Program {
    code: String,
    filter: Filter,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Program").field(&self.code).finish()
    }
}

/// Why a program does not compile: what, and where in its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// What is wrong.
    pub message: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1, in characters.
    pub column: u32,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

/// Why a program failed on one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError(pub String);

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Line and column (from 1, in characters) of byte `offset` of `code`.
fn position(code: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(code.len());
    let before = &code[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line as u32, column as u32)
}

/// The offset of `part` in `whole` when it is a slice of it, else 0.
fn offset_in(whole: &str, part: &str) -> usize {
    let (start, end) = (whole.as_ptr() as usize, whole.as_ptr() as usize + whole.len());
    let at = part.as_ptr() as usize;
    if at >= start && at <= end { at - start } else { 0 }
}

impl Program {
    /// Compiles `code`.
    pub fn compile(code: &str) -> Result<Self, CompileError> {
        // The library's definitions of left-out filters (`halt`, `debug`,
        // ...) go too: they call left-out natives.
        let defs =
            jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs()).filter(|def| !LEFT_OUT.contains(&def.name));
        let funs = jaq_core::funs::<Data>()
            .chain(jaq_std::funs::<Data>())
            .chain(jaq_json::funs::<Data>())
            .filter(|(name, _, _)| !LEFT_OUT.contains(name));
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let error_at = |part: &str, message: String| {
            let (line, column) = position(code, offset_in(code, part));
            CompileError { message, line, column }
        };
        let modules = loader.load(&arena, File { code, path: () }).map_err(|errors| {
            let Some((_, error)) = errors.into_iter().next() else {
                return error_at(code, "the program does not parse".to_owned());
            };
            match error {
                jaq_core::load::Error::Io(errors) => {
                    let (part, message) = errors.into_iter().next().unwrap_or((code, "cannot load a module".into()));
                    error_at(part, message)
                }
                jaq_core::load::Error::Lex(errors) => match errors.into_iter().next() {
                    Some((expected, found)) => error_at(found, format!("expected {}", expected.as_str())),
                    None => error_at(code, "the program does not lex".to_owned()),
                },
                jaq_core::load::Error::Parse(errors) => match errors.into_iter().next() {
                    Some((expected, found)) => {
                        let got =
                            if found.is_empty() { "the end of the program".to_owned() } else { format!("{found:?}") };
                        error_at(found, format!("expected {}, found {got}", expected.as_str()))
                    }
                    None => error_at(code, "the program does not parse".to_owned()),
                },
            }
        })?;
        let filter = Compiler::default().with_funs(funs).compile(modules).map_err(|errors| {
            let first = errors.into_iter().next().and_then(|(_, errors)| errors.into_iter().next());
            match first {
                Some((name, undefined)) => {
                    let what = undefined.as_str();
                    let note = if LEFT_OUT.contains(&name) || name == "$ENV" || name == "$__loc__" {
                        " (left out: a pipeline's outputs depend on its input only)"
                    } else {
                        ""
                    };
                    error_at(name, format!("undefined {what} `{name}`{note}"))
                }
                None => error_at(code, "the program does not compile".to_owned()),
            }
        })?;
        Ok(Self { code: code.to_owned(), filter })
    }

    /// The program's text.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Runs the program on `input`; its outputs, at most `limit` (more is an error).
    pub fn run(&self, input: &Value, limit: usize) -> Result<Vec<Value>, RunError> {
        let input: Val = serde_json::from_value(input.clone()).map_err(|e| RunError(format!("the input: {e}")))?;
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = Vec::new();
        let max_bytes = MAX_VALUE_BYTES.load(Ordering::Relaxed);
        let mut budget = max_bytes;
        for output in self.filter.id.run((ctx, input)).map(unwrap_valr) {
            let value = output.map_err(|e| RunError(format!("jq error: {e}")))?;
            if outputs.len() == limit {
                return Err(RunError(format!("the program produced more than {limit} outputs")));
            }
            outputs.push(to_json(&value, &mut budget).map_err(|e| match e {
                Bounded::TooLarge => {
                    RunError(format!("its values exceed {max_bytes} bytes (pipeline.max_value_bytes)"))
                }
                Bounded::Invalid(e) => e,
            })?);
        }
        Ok(outputs)
    }

    /// Runs the program and requires exactly one output.
    pub fn run_one(&self, input: &Value) -> Result<Value, RunError> {
        let mut outputs = self.run(input, 2).map_err(|e| {
            if e.0.starts_with("the program produced more") {
                RunError("it produced more than one value".into())
            } else {
                e
            }
        })?;
        match outputs.len() {
            1 => Ok(outputs.remove(0)),
            0 => Err(RunError("it produced no value".to_owned())),
            _ => Err(RunError("it produced more than one value".to_owned())),
        }
    }

    /// Runs the program as a predicate: its first output's truth (jq's:
    /// anything but `false` and `null`); no output is false.
    pub fn test(&self, input: &Value) -> Result<bool, RunError> {
        let outputs = self.run(input, usize::MAX)?;
        Ok(outputs.first().is_some_and(|v| !matches!(v, Value::Null | Value::Bool(false))))
    }
}

/// Why a value could not be converted.
enum Bounded {
    /// It is larger than what was left of the budget.
    TooLarge,
    /// It is not JSON.
    Invalid(RunError),
}

impl From<RunError> for Bounded {
    fn from(error: RunError) -> Self {
        Self::Invalid(error)
    }
}

/// Takes `bytes` from `budget`, or fails when it has fewer.
fn spend(budget: &mut usize, bytes: usize) -> Result<(), Bounded> {
    *budget = budget.checked_sub(bytes).ok_or(Bounded::TooLarge)?;
    Ok(())
}

/// A jaq value as JSON, its approximate size taken from `budget`; byte
/// strings become text, non-string object keys and non-finite numbers are
/// errors.
fn to_json(value: &Val, budget: &mut usize) -> Result<Value, Bounded> {
    Ok(match value {
        Val::Null => {
            spend(budget, 4)?;
            Value::Null
        }
        Val::Bool(b) => {
            spend(budget, 5)?;
            Value::Bool(*b)
        }
        Val::Num(_) => {
            let text = value.to_string();
            spend(budget, text.len())?;
            serde_json::from_str(&text).map_err(|_| RunError(format!("the number {text} is not valid JSON")))?
        }
        Val::TStr(bytes) | Val::BStr(bytes) => {
            spend(budget, bytes.len() + 2)?;
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
        Val::Arr(items) => {
            spend(budget, 2 + items.len())?;
            Value::Array(items.iter().map(|item| to_json(item, budget)).collect::<Result<_, _>>()?)
        }
        Val::Obj(map) => {
            spend(budget, 2 + map.len())?;
            let mut object = serde_json::Map::with_capacity(map.len());
            for (key, item) in map.iter() {
                let key = match key {
                    Val::TStr(bytes) | Val::BStr(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    other => return Err(RunError(format!("an object key is not a string: {other}")).into()),
                };
                spend(budget, key.len() + 3)?;
                object.insert(key, to_json(item, budget)?);
            }
            Value::Object(object)
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn runs_filters_and_transforms() {
        let program = Program::compile(".items[] | select(.n > 1) | {id, double: (.n * 2)}").unwrap();
        let input = json!({"items": [{"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "c", "n": 3.5}]});
        assert_eq!(
            program.run(&input, 10).unwrap(),
            vec![json!({"id": "b", "double": 4}), json!({"id": "c", "double": 7.0})]
        );
        assert!(Program::compile(".a == 1").unwrap().test(&json!({"a": 1})).unwrap());
        assert!(!Program::compile("empty").unwrap().test(&json!({})).unwrap());
        let upper = Program::compile("ascii_downcase | ltrimstr(\"x\")").unwrap();
        assert_eq!(upper.run_one(&json!("XAB")).unwrap(), json!("ab"));
    }

    #[test]
    fn compile_errors_have_positions() {
        let error = Program::compile(".a |\n  {b: }").unwrap_err();
        assert_eq!((error.line, error.column), (2, 7), "{error}");
        assert!(error.message.starts_with("expected"), "{error}");
        let error = Program::compile(".a | frobnicate(1)").unwrap_err();
        assert_eq!((error.line, error.column), (1, 6), "{error}");
        assert!(error.message.contains("frobnicate"), "{error}");
        let error = Program::compile("now").unwrap_err();
        assert!(error.message.contains("left out"), "{error}");
        let error = Program::compile("\"abc").unwrap_err();
        assert_eq!(error.line, 1, "{error}");
    }

    #[test]
    fn a_runaway_value_is_an_error() {
        // The default bound: 4 MiB of values per evaluation.
        let bloat = Program::compile("[range(1000000)] | map(tostring)").unwrap();
        let error = bloat.run(&json!(null), 10).unwrap_err();
        assert!(error.0.contains("pipeline.max_value_bytes"), "{error}");
        let doubling = Program::compile("[limit(24; \"x\" | recurse(. + .))] | last").unwrap();
        let error = doubling.run_one(&json!(null)).unwrap_err();
        assert!(error.0.contains("pipeline.max_value_bytes"), "{error}");
        // Many small outputs count together.
        let many = Program::compile("range(100000) | \"0123456789012345678901234567890123456789\"").unwrap();
        assert!(many.run(&json!(null), 1_000_000).unwrap_err().0.contains("pipeline.max_value_bytes"));
        assert_eq!(Program::compile("[range(1000)] | length").unwrap().run_one(&json!(null)).unwrap(), json!(1000));
    }

    #[test]
    fn runtime_errors_and_limits_are_errors() {
        let program = Program::compile(".a + 1").unwrap();
        assert!(program.run(&json!({"a": "x"}), 10).unwrap_err().0.contains("jq error"));
        let many = Program::compile("range(10)").unwrap();
        assert!(many.run(&json!(null), 5).unwrap_err().0.contains("more than 5"));
        assert!(many.run_one(&json!(null)).is_err());
    }
}

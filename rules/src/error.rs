//! [`RuleError`]: why a rule file was refused, located by file, line and field.

use std::path::PathBuf;

/// Why a rule file cannot be used. Each message is one line naming the file, the
/// line and column, the field, and what is allowed there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The file could not be read.
    // The system's reason is in the message, not a `source`, so that `{:#}` chains
    // do not print it twice.
    #[error("{}: cannot read the rule file: {reason}", path.display())]
    Read {
        /// The rule file.
        path: PathBuf,
        /// What the system said.
        reason: std::io::Error,
    },
    /// The file is not valid: TOML syntax, an unknown or missing field, a bad value,
    /// or rules that contradict each other.
    #[error("{}:{line}:{column}: {}", file.display(), describe(field, message))]
    Invalid {
        /// The rule file.
        file: PathBuf,
        /// Line, from 1.
        line: usize,
        /// Column, from 1 (in characters).
        column: usize,
        /// The field the problem is in (empty for a syntax error).
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

fn describe(field: &str, message: &str) -> String {
    if field.is_empty() {
        message.to_owned()
    } else {
        format!("field `{field}`: {message}")
    }
}

impl RuleError {
    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            RuleError::Invalid { field, .. } if !field.is_empty() => Some(field),
            _ => None,
        }
    }
}

/// Something a rule file allows but that is probably not what was meant (a setting
/// that makes files far smaller than `packets_per_read`, an old field name), located
/// like a [`RuleError`]. `orbreaper --check` and `orbreaper` print each as one line;
/// the file is still used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleWarning {
    /// The rule file.
    pub file: PathBuf,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1 (in characters).
    pub column: usize,
    /// The field the warning is about.
    pub field: String,
    /// What will happen and what to change.
    pub message: String,
}

impl std::fmt::Display for RuleWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            describe(&self.field, &self.message)
        )
    }
}

impl serde::Serialize for RuleWarning {
    /// As its one-line text, which is what users see.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

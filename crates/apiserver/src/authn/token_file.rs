//! Static bearer tokens from `--token-auth-file`: a CSV of
//! `token,user,uid,"group1,group2"` (groups optional), read once at start.
//! The legacy `--basic-auth-file` has the same layout with a password in
//! the first column ([`TokenFile::authenticate_basic`]).

use std::path::Path;

use super::UserInfo;

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: String,
        line: usize,
        reason: String,
    },
}

/// The tokens of a token file.
#[derive(Debug, Default, Clone)]
pub struct TokenFile {
    entries: Vec<(Vec<u8>, UserInfo)>,
}

/// Split one CSV record: commas separate fields, double quotes group a
/// field (a doubled quote inside is a literal quote).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field);
    Ok(fields)
}

impl TokenFile {
    pub fn load(path: &Path) -> Result<TokenFile, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, reason)| TokenFileError::Parse {
            path: path.display().to_string(),
            line,
            reason,
        })
    }

    pub fn parse(text: &str) -> Result<TokenFile, (usize, String)> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = csv_fields(line).map_err(|e| (i + 1, e))?;
            if fields.len() < 3 {
                return Err((i + 1, "need at least token,user,uid".into()));
            }
            let token = fields[0].trim();
            let user = fields[1].trim();
            if token.is_empty() || user.is_empty() {
                return Err((i + 1, "token and user must not be empty".into()));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            entries.push((
                token.as_bytes().to_vec(),
                UserInfo {
                    name: user.to_string(),
                    uid: fields[2].trim().to_string(),
                    groups,
                    ..UserInfo::default()
                },
            ));
        }
        Ok(TokenFile { entries })
    }

    /// The user of `token`. Every entry is compared in constant time, so
    /// timing reveals neither which token matched nor how much of one did.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        let mut found = None;
        for (candidate, user) in &self.entries {
            if constant_time_eq(candidate, token.as_bytes()) && found.is_none() {
                found = Some(user.clone());
            }
        }
        found
    }
}

impl TokenFile {
    /// HTTP basic credentials: the password compared in constant time
    /// against every entry, the user name required to match.
    pub fn authenticate_basic(&self, user: &str, password: &str) -> Option<UserInfo> {
        let mut found = None;
        for (candidate, info) in &self.entries {
            let password_ok = constant_time_eq(candidate, password.as_bytes());
            let user_ok = constant_time_eq(info.name.as_bytes(), user.as_bytes());
            if password_ok && user_ok && found.is_none() {
                found = Some(info.clone());
            }
        }
        found
    }
}

/// Equality whose running time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_rows_give_user_uid_and_groups() {
        let file =
            TokenFile::parse("# comment\nabc123,alice,u-1,\"dev,ops\"\nxyz,bob,u-2\n").unwrap();
        let alice = file.authenticate("abc123").unwrap();
        assert_eq!((alice.name.as_str(), alice.uid.as_str()), ("alice", "u-1"));
        assert_eq!(alice.groups, ["dev", "ops"]);
        assert!(file.authenticate("xyz").unwrap().groups.is_empty());
        assert!(file.authenticate("abc12").is_none());
        assert!(file.authenticate("").is_none());
    }

    #[test]
    fn malformed_token_files_name_the_line() {
        assert_eq!(TokenFile::parse("a,b,c\nonly-token\n").unwrap_err().0, 2);
        assert!(TokenFile::parse("a,\"b,c\n").is_err());
    }
}

//! Static files from `web_root`. A request path maps to a file only through plain
//! name components: `..`, `.`, empty components (`//`), backslashes, NUL and
//! percent-escapes of any of them are refused before the file system is asked, and the
//! resolved file must still lie inside the root once symbolic links are followed. A
//! directory serves its `index.html`.

use std::path::{Component, Path, PathBuf};

use http::StatusCode;

use super::{respond, HttpBody};

/// Largest file served; larger ones answer 404 rather than load into memory.
pub const MAX_FILE: u64 = 16 << 20;

/// The file `path` names under `root`, if it is a safe path to an existing file.
pub(super) fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.strip_prefix('/')?;
    let mut out = root.to_path_buf();
    if !rel.is_empty() {
        for part in rel.split('/') {
            let part = percent_decode(part)?;
            if part.is_empty()
                || part == "."
                || part == ".."
                || part.contains(['\\', '/', '\0'])
                || part.starts_with('.')
            {
                return None;
            }
            // One plain name: nothing a `Path` would read as a root or a prefix.
            let mut c = Path::new(&part).components();
            if !matches!((c.next(), c.next()), (Some(Component::Normal(_)), None)) {
                return None;
            }
            out.push(part);
        }
    }
    let mut file = out.canonicalize().ok()?;
    let root = root.canonicalize().ok()?;
    if file.is_dir() {
        file = file.join("index.html").canonicalize().ok()?;
    }
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16));
            let (h, l) = (hex(b.get(i + 1))?, hex(b.get(i + 2))?);
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A content type from the file name's extension.
fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The response for `path` from `root`, or `None` when no file answers (404).
pub(super) fn serve(root: Option<&Path>, path: &str) -> Option<http::Response<HttpBody>> {
    let file = resolve(root?, path)?;
    if std::fs::metadata(&file).ok()?.len() > MAX_FILE {
        return None;
    }
    let bytes = std::fs::read(&file).ok()?;
    Some(respond(StatusCode::OK, content_type(&file), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_inside_the_root_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "home").unwrap();
        std::fs::write(root.join("sub/a.txt"), "a").unwrap();
        std::fs::write(root.join(".hidden"), "h").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "s").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt")).unwrap();
        let ok = |p: &str| resolve(&root, p);
        assert_eq!(
            ok("/").unwrap(),
            root.join("index.html").canonicalize().unwrap()
        );
        assert_eq!(
            ok("/sub/a.txt").unwrap(),
            root.join("sub/a.txt").canonicalize().unwrap()
        );
        assert_eq!(
            ok("/sub%2Fa.txt"),
            None,
            "an escaped slash is not a separator"
        );
        for bad in [
            "/../secret.txt",
            "/sub/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt",
            "/sub/..%2F..%2Fsecret.txt",
            "/..%5Csecret.txt",
            "//etc/passwd",
            "/sub//a.txt",
            "/./index.html",
            "/.hidden",
            "/a%00b",
            "/bad%zz",
            "/missing.txt",
            "/link.txt",
            "relative",
        ] {
            assert_eq!(ok(bad), None, "{bad}");
        }
    }

    #[test]
    fn no_root_serves_nothing() {
        assert!(serve(None, "/index.html").is_none());
    }
}

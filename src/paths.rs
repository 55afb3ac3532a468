//! What a path really names, for checks that must not be fooled by
//! symlinks, `..` or a path that does not exist yet: "is the archive inside
//! the log directory?", "is this the database another run holds?".

use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed at most, like the kernel's `ELOOP` limit.
const MAX_LINKS: usize = 40;

/// The absolute path `path` names, with every symlink of its existing part
/// resolved (a dangling symlink at any depth is followed to where it points)
/// and `.`/`..` applied. The part that does not exist yet is kept as written.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    resolve_depth(path, 0)
}

fn resolve_depth(path: &Path, depth: usize) -> io::Result<PathBuf> {
    if depth > MAX_LINKS {
        return Err(io::Error::other(format!(
            "too many levels of symbolic links at {}",
            path.display()
        )));
    }
    let abs = std::path::absolute(path)?;
    let mut out = PathBuf::from("/");
    // Once a component does not exist, the rest cannot be links.
    let mut exists = true;
    for comp in abs.components() {
        match comp {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            // `out` holds no symlink, so going up is going up.
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                let next = out.join(name);
                if !exists {
                    out = next;
                    continue;
                }
                match std::fs::canonicalize(&next) {
                    Ok(c) => out = c,
                    Err(_) => match std::fs::read_link(&next) {
                        Ok(target) => out = resolve_depth(&out.join(target), depth + 1)?,
                        Err(_) => {
                            exists = false;
                            out = next;
                        }
                    },
                }
            }
        }
    }
    Ok(out)
}

/// True when one path is the other or lies inside it: component-wise on
/// the resolved paths, and by device and inode, which also sees through bind
/// mounts (two names of one directory that no symlink connects).
pub fn overlap(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a) || inside_by_inode(a, b) || inside_by_inode(b, a)
}

/// True when `outer` (an existing directory) is `inner` or one of the
/// existing ancestors of `inner`, compared by device and inode.
fn inside_by_inode(inner: &Path, outer: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(o) = std::fs::metadata(outer) else {
        return false;
    };
    inner.ancestors().any(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_dir() && (m.dev(), m.ino()) == (o.dev(), o.ino()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_links_dots_and_missing_parts() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("logs/fw")).unwrap();
        std::os::unix::fs::symlink(base.join("logs"), base.join("alias")).unwrap();
        std::os::unix::fs::symlink(base.join("nowhere/yet"), base.join("dangling")).unwrap();

        assert_eq!(
            resolve(&base.join("alias/fw")).unwrap(),
            base.join("logs/fw")
        );
        assert_eq!(
            resolve(&base.join("logs/fw/../../logs/new/x")).unwrap(),
            base.join("logs/new/x")
        );
        assert_eq!(
            resolve(&base.join("dangling/a")).unwrap(),
            base.join("nowhere/yet/a")
        );
        assert!(overlap(&base.join("logs"), &base.join("logs/fw/archive")));
        assert!(overlap(&base.join("logs/fw"), &base.join("logs")));
        assert!(overlap(&base.join("logs"), &base.join("logs")));
        assert!(!overlap(&base.join("logs"), &base.join("logs2")));
    }

    #[test]
    fn symlink_loops_end() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(base.join("b"), base.join("a")).unwrap();
        std::os::unix::fs::symlink(base.join("a"), base.join("b")).unwrap();
        assert!(resolve(&base.join("a/x")).is_err());
    }
}

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn inventory(name: &str) -> PathBuf {
    root().join("inventories").join(name)
}

/// A copy of the inventory `inv` (a path from the top directory) as `dir/inv.toml`, with `edit`
/// applied and its secrets' paths made absolute.
pub fn inventory_copy(inv: &str, dir: &Path, edit: &dyn Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(root().join(inv)).unwrap().replace(
        "\"secrets/",
        &format!("\"{}/inventories/secrets/", root().display()),
    );
    let p = dir.join("inv.toml");
    std::fs::write(&p, edit(text)).unwrap();
    p
}

/// `render --check -i inv --out out`, which must exit 0.
pub fn render_checked(inv: &Path, out: &Path) -> Done {
    Run::new(&["render", "--check", "-i"])
        .arg(inv)
        .arg("--out")
        .arg(out)
        .output()
        .status(0)
}

/// A run of the real binary, with the date pinned so zone serials are reproducible.
pub struct Run {
    cmd: Command,
}

impl Run {
    pub fn new(args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_provision"));
        cmd.env_remove("PROVISION_DB_PASSWORD");
        cmd.args(args)
            .current_dir(root())
            .env("SOURCE_DATE_EPOCH", "1795305600");
        Run { cmd }
    }

    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.arg(a);
        self
    }

    pub fn args(mut self, a: &[&str]) -> Run {
        self.cmd.args(a);
        self
    }

    /// Runs in `dir` instead of the repository's top directory.
    pub fn dir(mut self, dir: &Path) -> Run {
        self.cmd.current_dir(dir);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Run {
        self.cmd.env(k, v);
        self
    }

    pub fn output(mut self) -> Done {
        let out = self.cmd.output().expect("the provision binary runs");
        Done { out }
    }

    /// Starts the run in the background (for tests that act while it runs).
    pub fn spawn(mut self) -> Running {
        let child = self
            .cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the provision binary starts");
        Running { child }
    }
}

pub struct Running {
    pub child: std::process::Child,
}

impl Running {
    pub fn wait_output(self) -> Done {
        let out = self
            .child
            .wait_with_output()
            .expect("the provision binary runs");
        Done { out }
    }
}

pub struct Done {
    pub out: Output,
}

impl Done {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    /// Asserts the exit code, showing both streams when it differs.
    pub fn status(self, code: i32) -> Done {
        assert_eq!(
            self.code(),
            code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        assert!(
            !self.stderr().contains("panicked"),
            "panic:\n{}",
            self.stderr()
        );
        self
    }
}

/// Every regular file and link under `dir`, as (relative path, content or link target), sorted.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if meta.file_type().is_symlink() {
                out.push((
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()).into_bytes(),
                ));
            } else if meta.is_dir() {
                stack.push(p);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

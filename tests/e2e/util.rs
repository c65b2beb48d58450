//! A temporary working directory and a way to run `anchor` in it.
// Helpers shared by the test modules; not every module uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory per test, removed on drop.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        TestDir {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `name` inside the directory.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// An `anchor` command running in this directory, isolated from the
    /// caller's environment.
    pub fn anchor(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_anchor"));
        cmd.current_dir(self.dir.path())
            .env_remove("ANCHOR_CONFIG")
            .env_remove("ANCHOR_OUT")
            .env_remove("SCALE")
            .env_remove("RUST_LOG");
        cmd
    }
}

/// Output of a finished command, with readable accessors.
pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn of(cmd: &mut Command) -> Self {
        Run {
            output: cmd.output().expect("run anchor"),
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Panics with both streams unless the command succeeded.
    pub fn success(self) -> Self {
        assert!(
            self.output.status.success(),
            "anchor failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.code(),
            self.stdout(),
            self.stderr()
        );
        self
    }
}

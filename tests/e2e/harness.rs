//! A berthd per test, and a way to run the berth CLI against it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
pub const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");

/// Repository root (where `examples/` lives).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of an example's build context, checking that its guest was built.
pub fn example(name: &str) -> PathBuf {
    let dir = repo().join("examples").join(name);
    let wasm = dir.join(format!("{name}.wasm"));
    assert!(
        wasm.is_file(),
        "{} is missing: run scripts/build-examples.sh first",
        wasm.display()
    );
    dir
}

/// Path of a test guest's build context (`tests/guests/NAME`), checking that it was built.
pub fn test_guest(name: &str) -> PathBuf {
    let dir = repo().join("tests").join("guests").join(name);
    let wasm = dir.join(format!("{name}.wasm"));
    assert!(
        wasm.is_file(),
        "{} is missing: run scripts/build-examples.sh first",
        wasm.display()
    );
    dir
}

/// Compiled guests are shared between the tests' daemons: the cache is keyed by engine and
/// module digest and written atomically, so sharing it is safe and saves recompiling.
fn shared_compile_cache() -> PathBuf {
    let dir = repo().join("target").join("test-compiled");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Result of one CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }
}

/// A running berthd with its own data root and socket.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// Extra environment for berthd.
    env: Vec<(String, String)>,
    /// Extra arguments for berthd (after its own `--data-root` and `-H unix://...`).
    args: Vec<String>,
}

impl Daemon {
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Starts berthd with extra environment variables (it inherits the test's as well).
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::os::unix::fs::symlink(shared_compile_cache(), state.join("compiled")).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut d = Self {
            dir,
            child: None,
            env,
            args: Vec::new(),
        };
        d.spawn();
        d
    }

    /// Starts berthd with extra arguments (more `-H` listeners, TLS flags); it still listens
    /// on its own unix socket, which [`Daemon::berth`] uses.
    pub fn start_with_args(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::os::unix::fs::symlink(shared_compile_cache(), state.join("compiled")).unwrap();
        let mut d = Self {
            dir,
            child: None,
            env: Vec::new(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        d.spawn();
        d
    }

    /// Starts berthd with its data root at `data_root` (a directory the test owns, e.g. a
    /// small tmpfs). [`Daemon::state`] is a symlink to it; compiled guests still go to the
    /// shared cache (a symlink inside `data_root`).
    pub fn start_on(data_root: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(data_root, dir.path().join("state")).unwrap();
        std::os::unix::fs::symlink(shared_compile_cache(), data_root.join("compiled")).unwrap();
        let mut d = Self {
            dir,
            child: None,
            env: Vec::new(),
            args: Vec::new(),
        };
        d.spawn();
        d
    }

    /// The unix socket's path.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("berth.sock").display())
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .unwrap();
        let child = Command::new(BERTHD)
            .args([
                "--data-root",
                self.state().to_str().unwrap(),
                "-H",
                &self.host(),
            ])
            .args(&self.args)
            .env("BERTH_LOG", "debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.berth(&["version"]).code == 0 {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("berthd exited early ({status}): {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("berthd did not answer within 60s: {}", self.log());
    }

    /// Stops berthd with SIGTERM and waits for it.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let status = self.signal_stop();
        assert!(
            status.success(),
            "berthd exited with {status} on SIGTERM: {}",
            self.log()
        );
        status
    }

    fn signal_stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("daemon not running");
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("berthd did not stop on SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills berthd with SIGKILL (no chance to clean up) and starts it again.
    pub fn crash_and_restart(&mut self) {
        let mut child = self.child.take().expect("daemon not running");
        child.kill().unwrap();
        child.wait().unwrap();
        self.spawn();
    }

    /// Runs berthd on this data root to completion (for start-up failures); returns its
    /// exit status and stderr.
    pub fn run_to_exit(&self) -> (std::process::ExitStatus, String) {
        let out = Command::new(BERTHD)
            .args([
                "--data-root",
                self.state().to_str().unwrap(),
                "-H",
                &self.host(),
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// Runs `berth ARGS` against this daemon.
    pub fn berth(&self, args: &[&str]) -> Run {
        self.berth_in(args, None)
    }

    /// Runs `berth ARGS` with `input` on stdin.
    pub fn berth_in(&self, args: &[&str], input: Option<&[u8]>) -> Run {
        self.berth_env_in(args, &[], input)
    }

    /// Runs `berth ARGS` with extra environment variables for the client.
    pub fn berth_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.berth_env_in(args, env, None)
    }

    fn berth_env_in(&self, args: &[&str], env: &[(&str, &str)], input: Option<&[u8]>) -> Run {
        let mut child = Command::new(BERTH)
            .args(args)
            .envs(env.iter().copied())
            .env("BERTH_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(data) = input {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(data).unwrap();
        }
        Run::from(child.wait_with_output().unwrap())
    }

    /// Starts `berth ARGS` without waiting for it.
    pub fn berth_spawn(&self, args: &[&str]) -> Child {
        Command::new(BERTH)
            .args(args)
            .env("BERTH_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Builds an image from the WAT fixture `tests/e2e/fixtures/NAME.wat` (as `/NAME.wasm`).
    pub fn build_wat(&self, name: &str, tag: &str) {
        let src = repo().join(format!("tests/e2e/fixtures/{name}.wat"));
        let wasm = wat::parse_file(&src).unwrap();
        let dockerfile =
            format!("FROM scratch\nCOPY {name}.wasm /{name}.wasm\nENTRYPOINT [\"/{name}.wasm\"]\n");
        let dir = tempfile::tempdir().unwrap();
        let wasm_name = format!("{name}.wasm");
        let ctx = context(
            dir.path(),
            &[
                (wasm_name.as_str(), &wasm),
                ("Dockerfile", dockerfile.as_bytes()),
            ],
        );
        self.berth(&["build", "-t", tag, ctx.to_str().unwrap()])
            .ok();
    }

    /// Builds an example image and returns the build output.
    pub fn build_example(&self, name: &str, tag: &str) -> Run {
        let ctx = example(name);
        let r = self.berth(&["build", "-t", tag, ctx.to_str().unwrap()]);
        assert_eq!(r.code, 0, "build {name}: {r:#?}\n{}", self.log());
        r
    }

    /// Builds a test guest's image (`tests/guests/NAME`).
    pub fn build_test_guest(&self, name: &str, tag: &str) {
        let ctx = test_guest(name);
        let r = self.berth(&["build", "-t", tag, ctx.to_str().unwrap()]);
        assert_eq!(r.code, 0, "build {name}: {r:#?}\n{}", self.log());
    }

    /// Waits until `cond` holds for `berth inspect -f TEMPLATE NAME`.
    pub fn wait_inspect(&self, name: &str, template: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.berth(&["inspect", "-f", template, name]);
            if r.stdout.trim() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {template} never became {want:?}: {r:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Daemon {
    /// `berth inspect -f TEMPLATE NAME`, trimmed (empty when the command fails).
    pub fn inspect(&self, name: &str, template: &str) -> String {
        let r = self.berth(&["inspect", "-f", template, name]);
        if r.code == 0 {
            r.stdout.trim().to_string()
        } else {
            String::new()
        }
    }

    /// Waits (30 s hang guard) until `pred` holds for `berth inspect -f TEMPLATE NAME`;
    /// returns the value that satisfied it.
    pub fn wait_inspect_until(
        &self,
        name: &str,
        template: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.inspect(name, template);
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {template} never satisfied the condition; last {v:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills berthd with SIGKILL and leaves it down (see [`Daemon::start_again`]).
    pub fn stop_hard(&mut self) {
        let mut child = self.child.take().expect("daemon not running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Starts berthd again on the same data root after [`Daemon::stop_hard`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        self.spawn();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Writes a build context with the given files and returns its directory.
pub fn context(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    for (name, data) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    dir.to_path_buf()
}

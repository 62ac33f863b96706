//! `berth build`: images, the build cache, .dockerignore, build args, and image commands.

use crate::harness::{Daemon, context};

#[test]
fn build_tags_lists_and_reuses_cached_layers() {
    let d = Daemon::start();
    let first = d.build_example("hello", "hello:1");
    assert!(
        first.stdout.contains("Step 1/5 : FROM scratch"),
        "{first:#?}"
    );
    assert!(
        first.stdout.contains("Successfully tagged hello:1"),
        "{first:#?}"
    );
    assert!(!first.stdout.contains("Using cache"));
    let again = d.build_example("hello", "hello:2");
    assert!(again.stdout.contains("Using cache"), "{again:#?}");

    let images = d.berth(&["images"]);
    let out = images.ok().stdout.clone();
    assert!(out.starts_with("REPOSITORY"), "{out}");
    let rows: Vec<_> = out.lines().filter(|l| l.starts_with("hello ")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    // Same content, same layers: the second build reused the first one's layer.
    let layers1 = d
        .berth(&["inspect", "-f", "{{json .RootFS.Layers}}", "hello:1"])
        .stdout;
    let layers2 = d
        .berth(&["inspect", "-f", "{{json .RootFS.Layers}}", "hello:2"])
        .stdout;
    assert!(layers1.contains("sha256:"), "{layers1}");
    assert_eq!(layers1, layers2);
    let id1 = d.berth(&["inspect", "-f", "{{.Id}}", "hello:1"]).stdout;
    assert!(id1.trim().starts_with("sha256:"));
    let (os, arch) = (
        d.berth(&["inspect", "-f", "{{.Os}}", "hello:1"]).stdout,
        d.berth(&["inspect", "-f", "{{.Architecture}}", "hello:1"])
            .stdout,
    );
    assert_eq!((os.trim(), arch.trim()), ("wasi", "wasm"));
    let ep = d.berth(&["inspect", "-f", "{{json .Config.Entrypoint}}", "hello:1"]);
    assert_eq!(ep.stdout.trim(), r#"["/hello.wasm"]"#);

    // tag and rmi.
    d.berth(&["tag", "hello:1", "greeter:latest"]).ok();
    let r = d.berth(&["run", "--rm", "greeter"]);
    assert_eq!(r.ok().stdout, "Hello, world!\n");
    let r = d.berth(&["rmi", "greeter"]);
    assert_eq!(r.ok().stdout.trim(), "Untagged: greeter:latest");
    d.berth(&["rmi", "hello:2"]).ok();
    let r = d.berth(&["rmi", "hello:1"]);
    assert!(r.ok().stdout.contains("Untagged: hello:1"), "{r:#?}");
    assert!(r.stdout.contains("Deleted: sha256:"), "{r:#?}");
    assert!(!d.berth(&["images"]).stdout.contains("hello"));
}

#[test]
fn dockerignore_build_args_and_labels() {
    let d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(crate::harness::example("hello").join("hello.wasm")).unwrap();
    let ctx = context(
        tmp.path(),
        &[
            ("app.wasm", &wasm),
            ("secret.txt", b"do not ship"),
            ("data/keep.txt", b"keep"),
            (".dockerignore", b"secret.txt\n"),
            (
                "Dockerfile",
                b"FROM scratch\nARG WHO=nobody\nENV NAME=$WHO\nLABEL owner=${WHO}\nCOPY . /app/\nWORKDIR /app\nENTRYPOINT [\"/app/app.wasm\"]\n",
            ),
        ],
    );
    let r = d.berth(&[
        "build",
        "-t",
        "ign",
        "--build-arg",
        "WHO=Linus",
        ctx.to_str().unwrap(),
    ]);
    r.ok();
    let run = d.berth(&["run", "--rm", "ign"]);
    assert_eq!(run.ok().stdout, "Hello, Linus!\n");
    let label = d.berth(&["inspect", "-f", "{{.Config.Labels.owner}}", "ign"]);
    assert_eq!(label.ok().stdout.trim(), "Linus");
    // The ignored file is not in the image: the entrypoint override proves the path space.
    let r = d.berth(&["run", "--rm", "--entrypoint", "/app/secret.txt", "ign"]);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("not found"), "{r:#?}");
}

#[test]
fn build_without_tag_prints_the_id_and_quiet_prints_only_it() {
    let d = Daemon::start();
    let ctx = crate::harness::example("hello");
    let r = d.berth(&["build", "-q", ctx.to_str().unwrap()]);
    let id = r.ok().stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{r:#?}");
    let images = d.berth(&["images"]);
    assert!(images.ok().stdout.contains("<none>"), "{images:#?}");
}

//! bollard, the Docker SDK for Rust, drives berthd unchanged.

use crate::harness::Daemon;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptions,
    LogsOptionsBuilder, RemoveContainerOptions, StartContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt;

#[test]
fn bollard_lists_creates_starts_waits_reads_logs_and_removes() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let docker =
            Docker::connect_with_unix(&d.host(), 30, bollard::API_DEFAULT_VERSION).unwrap();
        let version = docker.version().await.unwrap();
        assert_eq!(version.api_version.as_deref(), Some("1.44"));

        let images = docker.list_images(None::<ListImagesOptions>).await.unwrap();
        assert!(
            images
                .iter()
                .any(|i| i.repo_tags.iter().any(|t| t == "hello:1")),
            "{images:?}"
        );

        let created = docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name("sdk").build()),
                ContainerCreateBody {
                    image: Some("hello:1".into()),
                    cmd: Some(vec!["a".into(), "b".into()]),
                    env: Some(vec!["NAME=SDK".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(created.id.len(), 64);

        docker
            .start_container("sdk", None::<StartContainerOptions>)
            .await
            .unwrap();
        // The default condition (not-running) returns at once if the guest already exited.
        let waited: Vec<_> = docker
            .wait_container("sdk", None::<WaitContainerOptions>)
            .collect()
            .await;
        assert_eq!(waited.len(), 1, "{waited:?}");
        assert_eq!(waited[0].as_ref().unwrap().status_code, 0);

        let logs: Vec<_> = docker
            .logs(
                "sdk",
                Some(
                    LogsOptionsBuilder::default()
                        .stdout(true)
                        .stderr(true)
                        .build(),
                ),
            )
            .collect()
            .await;
        let text: String = logs
            .into_iter()
            .map(|l| match l.unwrap() {
                LogOutput::StdOut { message } => String::from_utf8_lossy(&message).into_owned(),
                other => panic!("unexpected log frame {other:?}"),
            })
            .collect();
        assert_eq!(text, "Hello, SDK!\nargs: a b\n");

        let inspect = docker.inspect_container("sdk", None).await.unwrap();
        let state = inspect.state.unwrap();
        assert_eq!(state.exit_code, Some(0));

        let all = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default().all(true).build(),
            ))
            .await
            .unwrap();
        assert!(
            all.iter()
                .any(|c| c.names.as_deref() == Some(&["/sdk".to_string()][..])),
            "{all:?}"
        );
        docker
            .remove_container("sdk", None::<RemoveContainerOptions>)
            .await
            .unwrap();
        let all = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default().all(true).build(),
            ))
            .await
            .unwrap();
        assert!(all.is_empty(), "{all:?}");
    });
}

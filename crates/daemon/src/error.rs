//! The daemon's one error type, classified so the server can map it to an HTTP status in one
//! place.

use berth_image::build::BuildError;
use berth_image::images::ImageError;
use berth_image::store::StoreError;
use berth_image::unpack::UnpackError;
use berth_runtime::RuntimeError;

/// The class of an error, which decides its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 404
    NotFound,
    /// 409
    Conflict,
    /// 400
    InvalidArgument,
    /// 304: the request asked for the state the object is already in.
    NotModified,
    /// 503
    Unavailable,
    /// 401
    Unauthorized,
    /// 403: the object exists but this operation is never allowed on it.
    Forbidden,
    /// 500
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("container {0} is already in that state")]
    NotModified(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFoundMessage(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Registry(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl DaemonError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    pub fn kind(&self) -> ErrorKind {
        use ErrorKind::*;
        match self {
            Self::NoSuchContainer(_) | Self::NoSuchImage(_) | Self::NotFoundMessage(_) => NotFound,
            Self::Unauthorized(_) => Unauthorized,
            Self::Forbidden(_) => Forbidden,
            Self::Registry(_) => Internal,
            Self::NameInUse { .. } | Self::Conflict(_) => Conflict,
            Self::Invalid(_) => InvalidArgument,
            Self::NotModified(_) => NotModified,
            Self::Unavailable(_) => Unavailable,
            Self::Internal(_) | Self::Io { .. } | Self::Store(_) => Internal,
            Self::Image(e) => match e {
                ImageError::NotFound(_) => NotFound,
                ImageError::Ambiguous { .. } => InvalidArgument,
                ImageError::BadManifest { .. } | ImageError::BadConfig { .. } => InvalidArgument,
                _ => Internal,
            },
            Self::Build(e) => match e {
                BuildError::Io { .. } | BuildError::Store(_) => Internal,
                BuildError::Image(ImageError::Io { .. } | ImageError::CorruptState { .. }) => {
                    Internal
                }
                _ => InvalidArgument,
            },
            Self::Unpack(e) => match e {
                UnpackError::Io { .. } | UnpackError::Store(_) => Internal,
                _ => InvalidArgument,
            },
            Self::Runtime(e) => match e {
                RuntimeError::Cache { .. } | RuntimeError::Engine(_) => Internal,
                _ => InvalidArgument,
            },
        }
    }
}

pub type Result<T, E = DaemonError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_common_errors() {
        assert_eq!(
            DaemonError::NoSuchContainer("x".into()).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            DaemonError::Image(ImageError::NotFound("x".into())).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            DaemonError::NameInUse {
                name: "a".into(),
                id: "b".into()
            }
            .kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            DaemonError::Runtime(RuntimeError::NotWasm { len: 3 }).kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn name_conflict_message_is_dockers() {
        let e = DaemonError::NameInUse {
            name: "web".into(),
            id: "abc".into(),
        };
        assert_eq!(
            e.to_string(),
            "Conflict. The container name \"/web\" is already in use by container \"abc\". You have to remove (or rename) that container to be able to reuse that name."
        );
    }
}

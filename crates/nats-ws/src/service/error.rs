//! What can go wrong when adding a service, an endpoint, asking services about themselves, or
//! answering a request.

use thiserror::Error;

use crate::error::Quoted;
use crate::error::{PublishError, SubjectError, SubscribeError};

/// Why a service or endpoint could not be added, or a discovery request could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ServiceError {
    #[error(
        "invalid {what} name {}: use only letters, digits, '-' and '_' (at least one)",
        Quoted(name)
    )]
    InvalidName { what: &'static str, name: String },
    #[error("invalid service version {}: use a semantic version such as 1.2.3 or 1.2.3-rc.1", Quoted(.0))]
    InvalidVersion(String),
    #[error("invalid endpoint subject: {0}")]
    InvalidSubject(SubjectError),
    #[error("invalid queue group: {0}")]
    InvalidQueueGroup(SubjectError),
    #[error("a service id names an instance of a service: pass the service name too")]
    IdWithoutName,
    #[error("could not subscribe: {0}")]
    Subscribe(SubscribeError),
    #[error("could not send the request: {0}")]
    Publish(PublishError),
    #[error("not connected to the server: the services were not asked; ask again once connected")]
    NotConnected,
    #[error("the connection was lost while the services answered: ask again once connected")]
    ConnectionLost,
    #[error("permission denied: this user may not publish to {}", Quoted(subject))]
    PermissionDenied { subject: String },
    #[error("the service was stopped: add a new service to serve again")]
    Stopped,
    #[error("no async runtime to run the service's $SRV responders on: call this from within a tokio runtime")]
    NoRuntime,
}

impl From<SubscribeError> for ServiceError {
    fn from(e: SubscribeError) -> Self {
        ServiceError::Subscribe(e)
    }
}

impl From<PublishError> for ServiceError {
    fn from(e: PublishError) -> Self {
        ServiceError::Publish(e)
    }
}

/// Why a request could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RespondError {
    /// [`super::Request::respond_error`] with an empty description (nats.go's `ErrArgRequired`).
    #[error("an error reply needs a description: say what went wrong (it travels as the Nats-Service-Error header)")]
    DescriptionRequired,
    #[error(transparent)]
    Publish(#[from] PublishError),
}

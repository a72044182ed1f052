//! A request's failure as both protocols report it: an HTTP status with `{"error": ...}`, or a
//! gRPC status code, with the same message.

use axum::http::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or does not fit the model (shape, datatype, data size, JSON).
    BadRequest,
    /// No such model (or version).
    NotFound,
    /// The body is larger than the server takes.
    TooLarge,
    /// The queue is full: try again later (or elsewhere).
    Busy,
    /// The request waited longer than the server's timeout.
    Timeout,
    /// The server is stopping and takes no new work.
    ShuttingDown,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeError {
    pub kind: Kind,
    pub message: String,
}

impl ServeError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }

    pub fn http_status(&self) -> StatusCode {
        match self.kind {
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::Busy | Kind::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The codes Triton gives for the same failures (clients retry on UNAVAILABLE).
    pub fn grpc_status(&self) -> tonic::Status {
        let code = match self.kind {
            Kind::BadRequest => tonic::Code::InvalidArgument,
            Kind::NotFound => tonic::Code::NotFound,
            Kind::TooLarge => tonic::Code::ResourceExhausted,
            Kind::Busy | Kind::ShuttingDown => tonic::Code::Unavailable,
            Kind::Timeout => tonic::Code::DeadlineExceeded,
            Kind::Internal => tonic::Code::Internal,
        };
        tonic::Status::new(code, self.message.clone())
    }
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<crate::Error> for ServeError {
    fn from(e: crate::Error) -> Self {
        match e.root() {
            crate::Error::Input(_) | crate::Error::Format { .. } => Self::bad(e.one_line()),
            _ => Self::internal(e.one_line()),
        }
    }
}

//! Extractors whose failures are typed JSON errors with stable codes, and
//! whose messages never echo the request (which may carry personal data).

use axum::Json;
use axum::extract::rejection::{
    BytesRejection, JsonRejection, PathRejection, QueryRejection, StringRejection,
};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// A path parameter set.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

/// A query string.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

/// A UTF-8 text body.
#[derive(Debug)]
pub struct ApiText(pub String);

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "request body too large",
    )
}

fn bytes_rejection(r: &BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::bad_request("unreadable_body", "request body could not be read")
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            )),
            Err(JsonRejection::JsonSyntaxError(_)) => Err(ApiError::bad_request(
                "malformed_json",
                "request body is not valid JSON",
            )),
            Err(JsonRejection::JsonDataError(_)) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "request body does not have the expected fields and types",
            )),
            Err(JsonRejection::BytesRejection(b)) => Err(bytes_rejection(&b)),
            Err(_) => Err(ApiError::bad_request(
                "invalid_body",
                "request body rejected",
            )),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for ApiText {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match String::from_request(req, state).await {
            Ok(s) => Ok(Self(s)),
            Err(StringRejection::FailedToBufferBody(b)) => {
                Err(if b.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::bad_request("unreadable_body", "request body could not be read")
                })
            }
            Err(_) => Err(ApiError::bad_request(
                "invalid_text",
                "request body is not UTF-8 text",
            )),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|_: PathRejection| {
                ApiError::bad_request("invalid_path", "invalid path parameter")
            })
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|_: QueryRejection| {
                ApiError::bad_request("invalid_query", "invalid query parameters")
            })
    }
}

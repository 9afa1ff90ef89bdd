//! Objects: streaming put and get of any size in bounded memory, `Range`,
//! `ETag` = CID and immutable caching.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cim_hub_api::Scope;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiPath, ApiResult, Json, parse_cid};

/// How much more of a refused object body is read, and for how long,
/// before the 413 is sent: an HTTP/1 client still writing its body when the
/// connection closes sees a broken pipe instead of the answer (what servers
/// call a lingering close). A body larger still gets the answer and a
/// closed connection.
const LINGER_BYTES: u64 = 8 << 20;
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);
use crate::auth::Auth;
use crate::hub::Hub;
use crate::problem::Problem;

/// A stored object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectView {
    /// Its CID (raw, sha2-256): the name to get it by.
    pub cid: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Stores the body as an object (any size, streamed) under the CID of its bytes.
#[utoipa::path(
    put,
    path = "/v1/objects",
    tag = "objects",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The bytes"),
    responses(
        (status = 201, description = "Stored (or already there: identical content is stored once)", body = ObjectView,
            headers(("Location" = String, description = "`/v1/objects/<cid>`"), ("ETag" = String, description = "The CID, quoted"))),
        (status = 413, description = "Larger than `[hub] max_object_bytes`", body = Problem, content_type = "application/problem+json"),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn put(State(hub): State<Hub>, Auth(principal): Auth, request: Request) -> ApiResult<Response> {
    principal.require(Scope::Write)?;
    let limit = hub.settings().max_object_bytes;
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let seen = AtomicU64::new(0);
    let mut body = request.into_body().into_data_stream().map(|chunk| match chunk {
        Ok(chunk) => {
            let total = seen.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            if total > limit {
                Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "the object is too large"))
            } else {
                Ok(chunk)
            }
        }
        Err(error) => Err(std::io::Error::other(error)),
    });
    if declared.is_some_and(|size| size > limit) {
        linger(&mut body, &seen).await;
        return Err(Problem::too_large(limit));
    }
    let stored = hub.objects().put(tokio_util::io::StreamReader::new(&mut body)).await;
    let meta = match stored {
        Ok(meta) => meta,
        Err(cim_store::Error::Io(error)) if error.kind() == std::io::ErrorKind::FileTooLarge => {
            linger(&mut body, &seen).await;
            return Err(Problem::too_large(limit));
        }
        Err(cim_store::Error::Io(error)) => {
            return Err(Problem::bad_request(format!("reading the body failed: {error}")));
        }
        Err(error) => return Err(error.into()),
    };
    let cid = meta.cid.to_string();
    let mut response = (StatusCode::CREATED, Json(ObjectView { cid: cid.clone(), size: meta.size })).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/objects/{cid}")) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{cid}\"")) {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
}

/// Reads and drops up to [`LINGER_BYTES`] more of a refused body (for at
/// most [`LINGER_TIME`]); `seen` counts what the body stream has read.
async fn linger(body: &mut (impl Stream + Unpin), seen: &AtomicU64) {
    let until = seen.load(Ordering::Relaxed).saturating_add(LINGER_BYTES);
    let drain = async { while seen.load(Ordering::Relaxed) <= until && body.next().await.is_some() {} };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// The byte range a `Range` header asks for: `(first, last)` inclusive.
pub(crate) fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        // Several ranges: answering the whole object is allowed (RFC 9110 14.2).
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let suffix: u64 = end.parse().map_err(|_| ())?;
        if suffix == 0 || size == 0 {
            return Err(());
        }
        (size.saturating_sub(suffix), size - 1)
    } else {
        let first: u64 = start.parse().map_err(|_| ())?;
        let last = if end.is_empty() {
            size.saturating_sub(1)
        } else {
            end.parse::<u64>().map_err(|_| ())?.min(size.saturating_sub(1))
        };
        if first >= size || last < first {
            return Err(());
        }
        (first, last)
    };
    Ok(Some(range))
}

/// The bytes `first..=last` of a stream of chunks.
fn slice(
    chunks: impl Stream<Item = cim_store::Result<Bytes>> + Send + 'static,
    first: u64,
    last: u64,
) -> impl Stream<Item = cim_store::Result<Bytes>> + Send {
    let mut offset = 0u64;
    chunks
        .map_ok(move |chunk| {
            let start = offset;
            offset += chunk.len() as u64;
            let end = offset; // exclusive
            let from = first.max(start);
            let to = (last + 1).min(end);
            if from >= to { Bytes::new() } else { chunk.slice((from - start) as usize..(to - start) as usize) }
        })
        .take_while({
            let mut sent = 0u64;
            let wanted = last - first + 1;
            move |item| {
                let go = sent < wanted;
                if let Ok(chunk) = item {
                    sent += chunk.len() as u64;
                }
                futures::future::ready(go)
            }
        })
        .try_filter(|chunk| futures::future::ready(!chunk.is_empty()))
}

fn object_headers(headers: &mut HeaderMap, cid: &cim_cid::Cid) {
    let content_type =
        if cid.codec() == cim_cid::DAG_CBOR { "application/vnd.ipld.dag-cbor" } else { "application/octet-stream" };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{cid}\"")) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
}

fn not_modified(request_headers: &HeaderMap, cid: &cim_cid::Cid) -> bool {
    let tag = format!("\"{cid}\"");
    request_headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t == tag || t.strip_prefix("W/") == Some(tag.as_str())
        })
    })
}

/// Reads an object, streamed and verified against its CID; `Range` reads a part.
///
/// A full read re-hashes every byte: should the stored bytes not match the
/// CID, the response is cut off before its end. A `Range` read returns the
/// requested bytes without reading the rest, so it cannot be re-hashed.
#[utoipa::path(
    get,
    path = "/v1/objects/{cid}",
    tag = "objects",
    params(
        ("cid" = String, Path, description = "The object's CID"),
        ("Range" = Option<String>, Header, description = "`bytes=first-last`, `bytes=first-` or `bytes=-suffix`"),
        ("If-None-Match" = Option<String>, Header, description = "The CID, quoted: 304 when it matches"),
    ),
    responses(
        (status = 200, description = "The object (dag-cbor CIDs as application/vnd.ipld.dag-cbor)",
            content((Vec<u8> = "application/octet-stream"), (Vec<u8> = "application/vnd.ipld.dag-cbor")),
            headers(("ETag" = String, description = "The CID, quoted"), ("Cache-Control" = String, description = "immutable"), ("Content-Length" = u64))),
        (status = 206, description = "The range asked for",
            content((Vec<u8> = "application/octet-stream"), (Vec<u8> = "application/vnd.ipld.dag-cbor")),
            headers(("Content-Range" = String, description = "bytes first-last/size"))),
        (status = 304, description = "Not modified (the ETag matches)"),
        (status = 404, description = "No such object", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range is outside the object", body = Problem, content_type = "application/problem+json"),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(cid): ApiPath<String>,
    method: Method,
    request_headers: HeaderMap,
) -> ApiResult<Response> {
    principal.require(Scope::Read)?;
    let cid = parse_cid("cid", &cid)?;
    let Some(meta) = hub.objects().stat(&cid).await? else {
        return Err(cim_store::Error::ObjectNotFound(cid).into());
    };
    if not_modified(&request_headers, &cid) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        object_headers(response.headers_mut(), &cid);
        response.headers_mut().remove(header::CONTENT_TYPE);
        return Ok(response);
    }
    let range = match request_headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(value) => match parse_range(value, meta.size) {
            Ok(range) => range,
            Err(()) => {
                let mut response = Problem::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    format!("the object has {} bytes", meta.size),
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", meta.size)) {
                    response.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(response);
            }
        },
    };
    let (status, length) = match range {
        Some((first, last)) => (StatusCode::PARTIAL_CONTENT, last - first + 1),
        None => (StatusCode::OK, meta.size),
    };
    let body = if method == Method::HEAD || length == 0 {
        Body::empty()
    } else {
        let reader = hub.objects().get(&cid).await?;
        match range {
            Some((first, last)) => Body::from_stream(slice(reader, first, last)),
            None => Body::from_stream(reader),
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    object_headers(headers, &cid);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Some((first, last)) = range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{}", meta.size))
    {
        headers.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

/// An object's size and ETag without its bytes.
#[utoipa::path(
    head,
    path = "/v1/objects/{cid}",
    tag = "objects",
    params(("cid" = String, Path, description = "The object's CID")),
    responses(
        (status = 200, description = "The object exists", headers(("ETag" = String), ("Content-Length" = u64))),
        (status = 304, description = "Not modified (the ETag matches)"),
        (status = "default", description = "A problem (no body on HEAD)"),
    ),
    security(("bearer" = []))
)]
pub async fn head(
    state: State<Hub>,
    auth: Auth,
    path: ApiPath<String>,
    request_headers: HeaderMap,
) -> ApiResult<Response> {
    get(state, auth, path, Method::HEAD, request_headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=95-200", 100), Ok(Some((95, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=5-1", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=x-1", 100), Err(()));
    }

    #[tokio::test]
    async fn slices_cross_chunks() {
        let chunks = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"abcd")),
            Ok(Bytes::from_static(b"efgh")),
            Ok(Bytes::from_static(b"ijkl")),
        ]);
        let out: Vec<Bytes> = slice(chunks, 3, 8).try_collect().await.unwrap();
        assert_eq!(out.concat(), b"defghi");
    }
}

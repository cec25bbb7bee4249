//! What every function's part of the OpenAPI document shares: the error schema, the bearer
//! security scheme, and the error responses every operation can give.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::Modify;

use crate::error::{ErrorBody, ErrorDetail};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "chatapp", description = "Multi-tenant AI customer-support platform. Errors are always `{\"error\":{\"code\",\"message\"}}`."),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerScheme)
)]
struct Base;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from /auth/login, an API key (`ck_…`), or a widget session token",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document a function's `OpenApiRouter` starts from.
pub fn base() -> OpenApi {
    <Base as utoipa::OpenApi>::openapi()
}

/// Adds the error responses every operation can give, where it does not describe them itself:
/// 400 (a parameter or body failed to parse), 404, 500, 503 (busy); 401/403 when it is
/// secured; 413 when it takes a body; 409 when it writes (a unique value already taken).
pub fn finish(mut doc: OpenApi) -> OpenApi {
    for_each_operation(&mut doc, add_error_responses);
    doc
}

/// Calls `f` on every operation of `doc`, with whether its method writes.
pub fn for_each_operation(doc: &mut OpenApi, mut f: impl FnMut(&mut Operation, bool)) {
    for item in doc.paths.paths.values_mut() {
        for (op, writes) in [
            (&mut item.get, false),
            (&mut item.put, true),
            (&mut item.post, true),
            (&mut item.delete, true),
            (&mut item.patch, true),
            (&mut item.options, false),
            (&mut item.head, false),
        ] {
            if let Some(op) = op {
                f(op, writes);
            }
        }
    }
}

fn add_error_responses(op: &mut Operation, writes: bool) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let mut codes =
        vec![("400", "Bad request"), ("404", "Not found"), ("500", "Internal error"), ("503", "Busy: try again")];
    if secured {
        codes.push(("401", "Not authenticated"));
        codes.push(("403", "Not allowed"));
    }
    if has_body {
        codes.push(("413", "Body too large"));
    }
    if writes {
        codes.push(("409", "Conflict with the current state"));
    }
    for (code, description) in codes {
        op.responses.responses.entry(code.to_string()).or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                    )
                    .build(),
            )
        });
    }
}

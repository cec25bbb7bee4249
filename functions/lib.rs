//! chatapp's Lambda functions. Each lives in `functions/<name>/`: `handler.rs` holds its
//! routes and logic, `main.rs` only starts it. `template.yaml` names each by its directory
//! (`BuildProperties.Binary`), and the local runner serves the same handlers at the same paths.

#[path = "api-keys/handler.rs"]
pub mod api_keys;
#[path = "auth/handler.rs"]
pub mod auth;
#[path = "companies/handler.rs"]
pub mod companies;
#[path = "invitations/handler.rs"]
pub mod invitations;
#[path = "migrate/handler.rs"]
pub mod migrate;
#[path = "team/handler.rs"]
pub mod team;

#[path = "local/server.rs"]
pub mod local;

pub mod http_function;

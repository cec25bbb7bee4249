//! The smallest `lambda_http` function: answers every request with a fixed text. The bench
//! measures it beside chatapp's functions, in the same run, as the floor of a cold start.

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async { Ok::<_, Error>(Response::new(Body::from("hello"))) })).await
}

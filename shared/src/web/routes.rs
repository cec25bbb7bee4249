//! Routes with or without their OpenAPI description. A function's `routes()` builds both the
//! axum routes and their OpenAPI operations (request and response schemas, every component
//! they reach). Only the document needs the second half; a Lambda cold start building it for
//! nothing paid milliseconds for the larger routers (`agents`). [`routes!`](crate::routes)
//! builds the operations only with the `describe` feature (the local runner, the tests) and
//! outside [`without_descriptions`].

use std::cell::Cell;

thread_local! {
    static DESCRIBING: Cell<bool> = const { Cell::new(true) };
}

/// Whether `routes!` on this thread builds the OpenAPI operations: never without the
/// `describe` feature (deployed functions, where the description code is then not linked at
/// all), else unless inside [`without_descriptions`].
pub fn describing() -> bool {
    cfg!(feature = "describe") && DESCRIBING.with(Cell::get)
}

/// Runs `build` with `routes!` giving only the path and methods of each handler: the router
/// is the same, its OpenAPI document lists the paths without any operation. What a deployed
/// function's `main` uses.
pub fn without_descriptions<T>(build: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            DESCRIBING.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DESCRIBING.with(|d| d.replace(false)));
    build()
}

/// `utoipa_axum::routes!`, except that inside [`without_descriptions`] each handler
/// contributes only its path and methods (read from the same `#[utoipa::path]` attribute, so
/// the two routers cannot disagree), not its operation and schemas.
#[macro_export]
macro_rules! routes {
    // Handlers as `name` or `module::name` (identifiers, so they can be handed on to
    // `utoipa_axum::routes!`'s own arms, which a `path` fragment could not be).
    ( $( $( $segment:ident )::+ ),+ $(,)? ) => {
        if $crate::web::routes::describing() {
            ::utoipa_axum::routes!( $( $( $segment )::+ ),+ )
        } else {
            let mut paths = ::utoipa::openapi::path::Paths::new();
            let mut router = ::axum::routing::MethodRouter::new();
            $(
                let path: ::std::string::String = ::utoipa_axum::routes!(@path [path()] of $( $segment )::+);
                for method in ::utoipa_axum::routes!(@path [methods()] of $( $segment )::+) {
                    router = router.on(::utoipa_axum::PathItemExt::to_method_filter(&method), $( $segment )::+);
                }
                paths.paths.insert(path, ::utoipa::openapi::path::PathItem::default());
            )+
            (::std::vec::Vec::new(), paths, router)
        }
    };
}

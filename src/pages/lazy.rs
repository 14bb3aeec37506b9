//! The routes' pages, each loaded when it is first opened.
//!
//! Built with the `split` feature (the release app, `scripts/build_app.sh`), each page's code is a
//! split point: the build cuts it out of the main module into modules of its own, which the router
//! fetches the first time the page is opened, and `preload_all` fetches in the background once
//! the first page is on screen. A page whose modules cannot be fetched (the app's server is gone)
//! says so and is fetched again on the next visit: nothing panics, the open pages keep working.
//! Without the feature (debug and test builds, `trunk`), the same routes render from the one
//! module.

use leptos::prelude::*;
use leptos_router::LazyRoute;

/// One page: its route type, the name of its module, and its component.
macro_rules! lazy_pages {
    ($($route:ident, $module:ident => $page:path;)*) => {
        $(
            pub struct $route;

            impl LazyRoute for $route {
                fn data() -> Self {
                    $route
                }

                async fn view(_: Self) -> AnyView {
                    match $module::load().await {
                        Ok(view) => view,
                        Err(_) => view! { <NotLoaded/> }.into_any(),
                    }
                }
            }

            mod $module {
                use super::*;

                #[cfg(feature = "split")]
                #[leptos::wasm_split::wasm_split(
                    $module,
                    wasm_split_path = ::leptos::wasm_split,
                    fallible,
                    preload(preload)
                )]
                pub fn load() -> Result<AnyView, leptos::wasm_split::SplitLoaderError> {
                    Ok($page().into_any())
                }

                #[cfg(not(feature = "split"))]
                pub async fn load() -> Result<AnyView, std::convert::Infallible> {
                    Ok($page().into_any())
                }

                #[cfg(not(feature = "split"))]
                pub async fn preload() -> Result<(), std::convert::Infallible> {
                    Ok(())
                }
            }
        )*

        /// Fetches every page's modules, one page after the other, so that opening a page later
        /// is instant and does not need the app's server. A page that fails is fetched when it is
        /// opened.
        pub async fn preload_all() {
            $( let _ = $module::preload().await; )*
        }
    };
}

lazy_pages! {
    DashboardRoute, dashboard => crate::pages::demos::dashboard::Dashboard;
    ChatRoute, chat => crate::pages::demos::chat::Chat;
    CounterRoute, counter => crate::pages::demos::counter::CounterPage;
    ConfigRoute, config => crate::pages::demos::config::ConfigPage;
    ThemesRoute, themes => crate::pages::demos::themes::ThemesPage;
    WorkersRoute, workers => crate::pages::demos::workers::WorkersPage;
    MonitorRoute, monitor => crate::pages::console::monitor::MonitorPage;
    StreamsRoute, streams => crate::pages::console::streams::StreamsPage;
    KvRoute, kv => crate::pages::console::kv::KvPage;
    ServicesRoute, services => crate::pages::console::services::ServicesPage;
    GraphRoute, graph => crate::pages::console::graph::GraphPage;
    ProcessesRoute, processes => crate::pages::console::processes::ProcessesPage;
    ScaleRoute, scale => crate::pages::console::scale::ScalePage;
    ServerRoute, server => crate::pages::console::server::ServerPage;
    PlaygroundRoute, playground => crate::pages::playground::PlaygroundPage;
}

/// In place of a page whose code could not be fetched.
#[component]
fn NotLoaded() -> impl IntoView {
    view! {
        <section class="card empty" data-testid="page-not-loaded">
            <h1>"This page could not be loaded"</h1>
            <p>
                "The app's server did not send this page's code. Open the page again once it is \
                 back; the other pages keep working."
            </p>
        </section>
    }
}

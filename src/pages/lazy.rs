//! The routes whose code is loaded when they are first opened: the heavy pages and /chat, in four
//! groups.
//!
//! Built with the `split` feature (the release app, `scripts/build_app.sh`), each group's pages
//! are one split point: the build cuts their code out of the main module into a module of their
//! own, which the router fetches the first time one of them is opened, and `preload_all` fetches
//! in the background once the first page is on screen. A group whose module cannot be fetched
//! (the app's server is gone) says so and is fetched again on the next visit: nothing panics, the
//! open pages keep working. The small pages (users, counter, config, themes) stay in the main
//! module: a module of their own would cost more to fetch and start than their code does. /chat
//! is the largest of the demos (its rooms, history and pending list, 29 KB gzipped): in a module
//! of its own it keeps the first load of every other page under 400 KiB; its outbox, which sends
//! what was typed from whichever page the tab is on, stays in the main module.
//! Groups, not one module per page: pages share code, and the splitter puts the code each set of
//! split points shares in a chunk of its own, so 15 split points made 276 modules (13 for the
//! counter, 157 for /workers), each fetched and instantiated on its own.
//! Without the feature (debug and test builds, `trunk`), the same routes render from the one
//! module.

use leptos::prelude::*;
use leptos_router::LazyRoute;

/// Each group: the name of its module, then its pages (route type => component).
macro_rules! lazy_groups {
    ($($group:ident { $($route:ident => $page:path),* $(,)? })*) => {
        $(
            mod $group {
                use super::*;

                /// The group's pages, as the main module names them to the split one.
                #[derive(Clone, Copy)]
                #[repr(u8)]
                #[allow(clippy::enum_variant_names)]
                pub enum Page {
                    $($route),*
                }

                fn page_view(page: Page) -> AnyView {
                    match page {
                        $(Page::$route => $page().into_any()),*
                    }
                }

                #[cfg(feature = "split")]
                #[leptos::wasm_split::wasm_split(
                    $group,
                    wasm_split_path = ::leptos::wasm_split,
                    fallible,
                    preload(preload)
                )]
                pub fn load(page: Page) -> Result<AnyView, leptos::wasm_split::SplitLoaderError> {
                    Ok(page_view(page))
                }

                #[cfg(not(feature = "split"))]
                pub async fn load(page: Page) -> Result<AnyView, std::convert::Infallible> {
                    Ok(page_view(page))
                }

                #[cfg(not(feature = "split"))]
                pub async fn preload() -> Result<(), std::convert::Infallible> {
                    Ok(())
                }
            }

            $(
                pub struct $route;

                impl LazyRoute for $route {
                    fn data() -> Self {
                        $route
                    }

                    async fn view(_: Self) -> AnyView {
                        match $group::load($group::Page::$route).await {
                            Ok(view) => view,
                            Err(_) => view! { <NotLoaded/> }.into_any(),
                        }
                    }
                }
            )*
        )*

        /// Fetches every group's module, one after the other, so that opening a page later is
        /// instant and does not need the app's server; `true` if every one came. A group that
        /// failed is fetched when one of its pages is opened.
        pub async fn preload_all() -> bool {
            let mut all = true;
            $( all &= $group::preload().await.is_ok(); )*
            all
        }
    };
}

lazy_groups! {
    chat {
        ChatRoute => crate::pages::demos::chat::Chat,
    }
    workers {
        WorkersRoute => crate::pages::demos::workers::WorkersPage,
    }
    console {
        MonitorRoute => crate::pages::console::monitor::MonitorPage,
        StreamsRoute => crate::pages::console::streams::StreamsPage,
        KvRoute => crate::pages::console::kv::KvPage,
        ServicesRoute => crate::pages::console::services::ServicesPage,
        GraphRoute => crate::pages::console::graph::GraphPage,
        ProcessesRoute => crate::pages::console::processes::ProcessesPage,
        ScaleRoute => crate::pages::console::scale::ScalePage,
        ServerRoute => crate::pages::console::server::ServerPage,
    }
    playground {
        PlaygroundRoute => crate::pages::playground::PlaygroundPage,
    }
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

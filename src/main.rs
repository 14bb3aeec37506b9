/// The heap, counted: a worker tab reports its live bytes (`via_workers::alloc`), which show a
/// leak long before the wasm memory, which only grows in 64 KiB pages and never shrinks, does.
#[global_allocator]
static ALLOC: via_workers::alloc::Counting = via_workers::alloc::Counting;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(via::App);
}

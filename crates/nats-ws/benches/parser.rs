//! Native throughput of the protocol core (criterion): `cargo bench -p nats-ws --bench parser`.
//!
//! - `parser/msg_16b`, `parser/msg_1k`: [`Parser`] alone on back-to-back `MSG` operations with 16 B and
//!   1 KiB payloads, fed in 4 KiB chunks (the frame size nats-server uses towards browsers) and drained
//!   after each; reported in bytes per second.
//! - `connection_input/msg_16b`: the same bytes through [`Connection::handle_input`] with a
//!   subscription, events drained: parsing plus what a message costs on its way to the application.
//! - `publish/16b`: [`Connection::publish`] (checks + encoding) of 1000 messages, then the transmit.
//!
//! bench/run.sh reads the estimates from target/criterion and reports them in MB/s (10^6 bytes).

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;

    use criterion::{criterion_group, BatchSize, Criterion, Throughput};
    use nats_ws::proto::{Connection, Event, Parser, SubscribeOptions, Transmit};
    use nats_ws::Options;
    use web_time::Instant;

    /// Chunk size the input is fed in.
    const CHUNK: usize = 4096;
    /// About this many bytes of operations per iteration.
    const INPUT: usize = 256 * 1024;

    fn msgs(payload: usize) -> Vec<u8> {
        let body = vec![b'x'; payload];
        let mut out = Vec::with_capacity(INPUT + 2 * payload);
        let mut i = 0u64;
        while out.len() < INPUT {
            out.extend_from_slice(
                format!("MSG bench.parser.{} 1 {payload}\r\n", i % 10).as_bytes(),
            );
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\r\n");
            i += 1;
        }
        out
    }

    fn parse_all(parser: &mut Parser, input: &[u8]) -> usize {
        let mut ops = 0;
        for chunk in input.chunks(CHUNK) {
            parser.feed(chunk);
            while let Some(op) = parser.next_op().expect("valid input") {
                black_box(&op);
                ops += 1;
            }
        }
        ops
    }

    fn parser(c: &mut Criterion) {
        let mut group = c.benchmark_group("parser");
        for (name, payload) in [("msg_16b", 16), ("msg_1k", 1024)] {
            let input = msgs(payload);
            group.throughput(Throughput::Bytes(input.len() as u64));
            group.bench_function(name, |b| {
                let mut parser = Parser::new();
                b.iter(|| parse_all(&mut parser, black_box(&input)))
            });
        }
        group.finish();
    }

    /// A connection past its handshake, subscribed to `bench.>` as sid 1.
    fn connected() -> Connection {
        let now = Instant::now();
        let mut conn = Connection::new(Options::new("ws://127.0.0.1:8080"), now, 7).unwrap();
        conn.handle_input(
            now,
            b"INFO {\"server_id\":\"S\",\"version\":\"2.9.10\",\"headers\":true,\"max_payload\":1048576}\r\n",
        );
        conn.handle_input(now, b"PONG\r\n");
        let sid = conn
            .subscribe("bench.>", SubscribeOptions::default())
            .unwrap();
        assert_eq!(sid, 1);
        while conn.poll_transmit().is_some() {}
        while conn.poll_event().is_some() {}
        assert!(conn.status().is_connected());
        conn
    }

    fn connection_input(c: &mut Criterion) {
        let mut group = c.benchmark_group("connection_input");
        let input = msgs(16);
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function("msg_16b", |b| {
            let mut conn = connected();
            let now = Instant::now();
            b.iter(|| {
                let mut messages = 0;
                for chunk in input.chunks(CHUNK) {
                    conn.handle_input(now, black_box(chunk));
                    while let Some(event) = conn.poll_event() {
                        if let Event::Message { message, .. } = event {
                            black_box(&message);
                            messages += 1;
                        }
                    }
                }
                messages
            })
        });
        group.finish();
    }

    fn publish(c: &mut Criterion) {
        let mut group = c.benchmark_group("publish");
        group.throughput(Throughput::Elements(1000));
        let payload = [b'x'; 16];
        group.bench_function("16b", |b| {
            b.iter_batched_ref(
                connected,
                |conn| {
                    for _ in 0..1000 {
                        conn.publish(
                            &Instant::now,
                            "bench.publish.subject",
                            None,
                            None,
                            black_box(&payload),
                        )
                        .unwrap();
                    }
                    match conn.poll_transmit() {
                        Some(Transmit::Data(bytes)) => bytes.len(),
                        _ => 0,
                    }
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }

    criterion_group!(benches, parser, connection_input, publish);

    pub fn main() {
        benches();
        criterion::Criterion::default()
            .configure_from_args()
            .final_summary();
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::main();
}

// Criterion is a native-only dev-dependency; on wasm32 this bench is an empty program.
#[cfg(target_arch = "wasm32")]
fn main() {}

//! Observability: the metrics a manager serves, its health probes, the reconcile span and its
//! logs, and the client's flow control, all over real HTTP on 127.0.0.1 where they are served.

mod flow_control;
mod metrics;
mod probes;
mod scrape;
mod spans;

//! The embedded broker: librdkafka's in-process mock cluster, for running without Kafka.
//!
//! It speaks the Kafka protocol on a 127.0.0.1 port, so clients in this process and in other
//! processes connect to [`EmbeddedBroker::bootstrap_servers`] as to any broker. What it does
//! not give:
//!
//! - **Nothing survives the process**: topics, messages and committed offsets live in memory.
//! - **A bounded log**: each partition keeps only about 5 MiB (or 100k message batches); older
//!   messages vanish and a consumer that lags further behind silently skips them. Hence many
//!   partitions, lz4, and a consumer running alongside the producer (the replay's
//!   [`Backpressure`](crate::Backpressure) bounds the lag).
//! - No CreateTopics API (topics are made here, with [`EmbeddedBroker::create_topic`]), one
//!   broker, no replication, no authentication; group rebalances wait
//!   `session.timeout.ms` - 1 s, so consumers should use a short session timeout.
//!
//! The cluster handle is not `Send`, so it lives in a thread of its own; dropping the
//! [`EmbeddedBroker`] stops that thread and the cluster.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::mocking::MockCluster;
use rdkafka::types::RDKafkaErrorCode;

use crate::TopicSpec;

enum Command {
    CreateTopic(TopicSpec, mpsc::Sender<KafkaResult<()>>),
}

/// A running in-process mock Kafka cluster with one broker.
pub struct EmbeddedBroker {
    bootstrap: String,
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker").field("bootstrap", &self.bootstrap).finish()
    }
}

impl EmbeddedBroker {
    /// Starts the mock cluster and creates `topics`.
    ///
    /// # Errors
    /// librdkafka could not start the cluster or create a topic.
    pub fn start(topics: &[TopicSpec]) -> KafkaResult<Self> {
        let (ready_tx, ready_rx) = mpsc::channel::<KafkaResult<String>>();
        let (commands_tx, commands_rx) = mpsc::channel::<Command>();
        let topics = topics.to_vec();
        let thread = std::thread::Builder::new()
            .name("kafka-mock".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(cluster) => cluster,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for t in &topics {
                    if let Err(e) = cluster.create_topic(&t.name, t.partitions, 1) {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Serve commands until the handle is dropped.
                while let Ok(command) = commands_rx.recv() {
                    match command {
                        Command::CreateTopic(t, reply) => {
                            let _ = reply.send(cluster.create_topic(&t.name, t.partitions, 1));
                        }
                    }
                }
                drop(cluster);
            })
            .map_err(|_| KafkaError::MockCluster(RDKafkaErrorCode::Fail))?;
        let bootstrap = ready_rx.recv().map_err(|_| KafkaError::MockCluster(RDKafkaErrorCode::Fail))??;
        tracing::info!(%bootstrap, "embedded Kafka broker (in-process mock) started; nothing survives this process");
        Ok(Self { bootstrap, commands: Some(commands_tx), thread: Some(thread) })
    }

    /// The `bootstrap.servers` to give clients, e.g. `127.0.0.1:40123`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates one more topic.
    ///
    /// # Errors
    /// librdkafka refused it, or the cluster thread is gone.
    pub fn create_topic(&self, topic: &TopicSpec) -> KafkaResult<()> {
        let gone = || KafkaError::MockCluster(RDKafkaErrorCode::Fail);
        let (tx, rx) = mpsc::channel();
        self.commands.as_ref().ok_or_else(gone)?.send(Command::CreateTopic(topic.clone(), tx)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

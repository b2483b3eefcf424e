//! `ibsim refund …`: settlement staff's batch refunds through the platform, and the bank's batch
//! job trigger.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use proto::platform::v1 as platform;
use proto::platform::v1::refund_ops_service_client::RefundOpsServiceClient;
use proto::sim::v1 as sim;
use proto::sim::v1::batch_job_service_client::BatchJobServiceClient;

use crate::commands::connect;
use crate::print;

/// Batch refunds.
#[derive(Subcommand, Debug)]
pub enum Refund {
    /// Push a refund batch to the bank through the platform: a batch file you wrote (--file,
    /// format in docs/file-formats.md), or refunds of existing orders (--batch-no with one or
    /// more --refund ORDER=AMOUNT[:REASON]). A progress bar shows on a terminal, plain lines
    /// when piped.
    Batch {
        /// The batch file.
        #[arg(long, conflicts_with_all = ["batch_no", "refunds"])]
        file: Option<PathBuf>,
        /// The batch number, for --refund.
        #[arg(long, requires = "refunds")]
        batch_no: Option<String>,
        /// A refund: ORDER=AMOUNT or ORDER=AMOUNT:REASON; repeat for more.
        #[arg(long = "refund", value_name = "ORDER=AMOUNT[:REASON]")]
        refunds: Vec<String>,
    },
    /// Where a batch stands (the platform asks the bank first).
    Status {
        /// The batch number.
        batch_no: String,
    },
    /// Fetch and apply a finished batch's result file and list its failed lines.
    Result {
        /// The batch number.
        batch_no: String,
        /// Also save the result file here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Refund lines of a batch or of an order, from applied result files.
    List {
        /// Only this batch's.
        #[arg(long)]
        batch_no: Option<String>,
        /// Only this order's.
        #[arg(long)]
        order_no: Option<String>,
        /// Only failed lines.
        #[arg(long)]
        failed: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Run the bank's refund batch job now (it also runs on its schedule).
    Run,
}

/// Runs an `ibsim refund` command.
///
/// Long: one arm per `ibsim refund` subcommand, each one call and its printout.
pub async fn refund(bank_url: &str, platform_url: &str, cmd: Refund) -> anyhow::Result<()> {
    if let Refund::Run = cmd {
        let done = match BatchJobServiceClient::new(connect(bank_url).await?)
            .run_refund_job(sim::RunRefundJobRequest {})
            .await
        {
            Ok(r) => r.into_inner().finished_batch_nos,
            Err(s) if cut_off(&s) => {
                println!(
                    "the job is still running at the bank (the call outlived the server's time \
                     limit); follow it with `ibsim refund status BATCH_NO`"
                );
                return Ok(());
            }
            Err(s) => return Err(s.into()),
        };
        if done.is_empty() {
            println!("no batch waiting");
        }
        for b in done {
            println!("finished {b}");
        }
        return Ok(());
    }
    let mut ops = RefundOpsServiceClient::new(connect(platform_url).await?);
    let batch = match cmd {
        Refund::Batch {
            file: Some(file), ..
        } => {
            let mut progress: Option<Progress> = None;
            ibsim_cli::transfer::upload_batch(&mut ops, &file, move |sent, size| {
                progress.get_or_insert_with(|| Progress::new(size)).at(sent)
            })
            .await?
        }
        Refund::Batch {
            batch_no: Some(batch_no),
            refunds,
            ..
        } => {
            let refunds = refunds
                .iter()
                .map(|r| entry(r))
                .collect::<anyhow::Result<Vec<_>>>()?;
            ops.create_refund_batch(platform::CreateRefundBatchRequest { batch_no, refunds })
                .await?
                .into_inner()
                .batch
        }
        Refund::Batch { .. } => anyhow::bail!("give --file, or --batch-no with --refund"),
        Refund::Status { batch_no } => {
            ops.get_refund_batch(platform::GetRefundBatchRequest { batch_no })
                .await?
                .into_inner()
                .batch
        }
        Refund::Result { batch_no, out } => {
            let b = match ops
                .fetch_refund_result(platform::FetchRefundResultRequest {
                    batch_no: batch_no.clone(),
                })
                .await
            {
                Ok(r) => r.into_inner().batch,
                Err(s) if cut_off(&s) => {
                    println!(
                        "the platform is still applying the result (the call outlived the \
                         server's time limit); ask again with `ibsim refund result {batch_no}`"
                    );
                    return Ok(());
                }
                Err(s) => return Err(s.into()),
            };
            if let Some(out) = out {
                ibsim_cli::transfer::save_result(&mut ops, &batch_no, &out).await?;
                println!("result file saved to {}", out.display());
            }
            list(&mut ops, Some(batch_no), None, true, 100).await?;
            b
        }
        Refund::List {
            batch_no,
            order_no,
            failed,
            limit,
        } => return list(&mut ops, batch_no, order_no, failed, limit).await,
        Refund::Run => unreachable!("handled above"),
    };
    if let Some(b) = batch {
        print::refund_batch(&b);
    }
    Ok(())
}

/// A call the server cut off at its request time limit (the work it started goes on).
fn cut_off(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
    )
}

/// `ORDER=AMOUNT[:REASON]`.
fn entry(s: &str) -> anyhow::Result<platform::RefundEntry> {
    let (order, rest) = s
        .split_once('=')
        .with_context(|| format!("{s:?}: a refund is ORDER=AMOUNT or ORDER=AMOUNT:REASON"))?;
    let (amount, reason) = rest.split_once(':').unwrap_or((rest, ""));
    Ok(platform::RefundEntry {
        order_no: order.to_owned(),
        amount: amount.to_owned(),
        refund_id: String::new(),
        reason: reason.to_owned(),
    })
}

/// Shows how much of a file went: a bar redrawn in place on a terminal, a line per tenth when
/// piped.
struct Progress {
    total: u64,
    done: u64,
    tty: bool,
    shown: u64,
}

impl Progress {
    fn new(total: u64) -> Progress {
        Progress {
            total,
            done: 0,
            tty: std::io::stderr().is_terminal(),
            shown: 0,
        }
    }

    fn at(&mut self, done: u64) {
        self.done = done;
        let pct = (self.done * 100).checked_div(self.total).unwrap_or(100);
        let mut err = std::io::stderr();
        if self.tty {
            let filled = usize::try_from(pct / 4).unwrap_or(25);
            let _ = write!(
                err,
                "\r  pushing [{:<25}] {pct:>3}%  {} of {} bytes",
                "#".repeat(filled),
                self.done,
                self.total
            );
            if self.done >= self.total {
                let _ = writeln!(err);
            }
        } else if pct >= self.shown + 10 || (self.done >= self.total && self.shown < 100) {
            self.shown = pct - pct % 10;
            let _ = writeln!(err, "pushed {pct}% ({} of {} bytes)", self.done, self.total);
        }
    }
}

async fn list(
    ops: &mut RefundOpsServiceClient<tonic::transport::Channel>,
    batch_no: Option<String>,
    order_no: Option<String>,
    failed_only: bool,
    limit: u32,
) -> anyhow::Result<()> {
    let refunds = ops
        .list_refunds(platform::ListRefundsRequest {
            batch_no: batch_no.unwrap_or_default(),
            order_no: order_no.unwrap_or_default(),
            failed_only,
            limit,
            after_seq: 0,
        })
        .await?
        .into_inner()
        .refunds;
    for r in refunds {
        let outcome = if r.success {
            "OK".to_owned()
        } else {
            format!("{} {}", r.reason_code, r.reason_text)
        };
        println!(
            "{} #{:<6} {:<20} {:<24} {:>10}  {outcome}",
            r.batch_no, r.seq, r.refund_id, r.order_no, r.amount
        );
    }
    Ok(())
}

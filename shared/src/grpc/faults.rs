//! Injected faults carried out on an interbank call: the node's fault rules decide whether the
//! call is delayed, refused with a made-up status, or its reply dropped (`with_faults`).

use super::*;

/// The ErrorInfo domain of statuses made up by a fault rule.
pub const FAULT_DOMAIN: &str = "fault.interbank-sim";

/// Runs one interbank call through the node's fault rules: `send` is the call itself (on the
/// caller side) or its processing (on the callee side), and may run twice (deliver twice) or
/// not at all (fail, lose the write: answered with an empty reply).
pub async fn with_faults<M, F, Fut>(
    faults: &Faults,
    side: Side,
    call: Call<'_>,
    send: F,
) -> Result<Response<M>, Status>
where
    M: Default,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Response<M>, Status>>,
{
    let Some((rule, action)) = faults.fire(side, &call) else {
        return send().await;
    };
    match action {
        Action::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
            send().await
        }
        Action::Fail {
            code,
            reason,
            message,
        } => Err(fault_status(code, reason, message)),
        Action::DropReply => {
            let _ = send().await;
            Err(reply_dropped(rule, call.method))
        }
        Action::DeliverTwice => {
            let _ = send().await;
            send().await
        }
        Action::LoseWrite => {
            tracing::warn!(rule = %rule, method = call.method, "write lost: answered yes without processing");
            Ok(Response::new(M::default()))
        }
    }
}

/// Like [`with_faults`] for a call that can run only once (a streamed file, read as it arrives):
/// `fail` answers without running it, `delay` waits first, `drop_reply` runs it and loses the
/// answer, and `deliver_twice` runs it once (the calls this serves answer a repeat with the first
/// result anyway).
pub async fn with_faults_once<T>(
    faults: &Faults,
    side: Side,
    call: Call<'_>,
    work: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let Some((rule, action)) = faults.fire(side, &call) else {
        return work.await;
    };
    match action {
        Action::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
            work.await
        }
        Action::Fail {
            code,
            reason,
            message,
        } => Err(fault_status(code, reason, message)),
        Action::DropReply => {
            let _ = work.await;
            Err(reply_dropped(rule, call.method))
        }
        Action::DeliverTwice => work.await,
        Action::LoseWrite => Err(Status::unavailable(format!(
            "{} lost (fault rule {rule}: a streamed call cannot be answered empty)",
            call.method
        ))),
    }
}

pub(super) fn fault_status(code: i32, reason: String, message: String) -> Status {
    Status::with_error_details(
        Code::from_i32(code),
        message,
        ErrorDetails::with_error_info(reason, FAULT_DOMAIN, HashMap::new()),
    )
}

pub(super) fn reply_dropped(rule: impl std::fmt::Display, method: &str) -> Status {
    Status::unavailable(format!(
        "the reply to {method} was lost (fault rule {rule} dropped it after the call was processed)"
    ))
}

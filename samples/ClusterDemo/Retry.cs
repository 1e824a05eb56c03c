using System.Diagnostics;

namespace ClusterDemo;

/// <summary>
/// Calls with a short timeout of their own, retried. A call that went through a silo's gateway when the
/// silo died gets no answer until Orleans' response timeout (30 s); with its own timeout and a retry it
/// is sent again through a live gateway as soon as the cluster has noticed the death (about a second with
/// the tuned membership options).
/// </summary>
public static class Retry
{
    /// <summary>How long one attempt may take before it is abandoned and retried.</summary>
    public static TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a call keeps being retried before its last failure is thrown.</summary>
    public static TimeSpan GiveUpAfter { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Runs <paramref name="call"/> until it answers, retrying timeouts and Orleans failures (a dead silo, no
    /// gateway yet). Guest exceptions and other errors are not retried: sending them again would fail again.
    /// The call may run more than once, so it should be idempotent, or the caller must tolerate repeats.
    /// </summary>
    public static async Task<T> Call<T>(Func<Task<T>> call)
    {
        ArgumentNullException.ThrowIfNull(call);
        var started = Stopwatch.GetTimestamp();
        var pause = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                return await call().WaitAsync(AttemptTimeout).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e) && Stopwatch.GetElapsedTime(started) + pause < GiveUpAfter)
            {
                await Task.Delay(pause).ConfigureAwait(false);
                pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
            }
        }
    }

    /// <summary>Runs <paramref name="call"/> like <see cref="Call{T}(Func{Task{T}})"/>.</summary>
    public static Task Call(Func<Task> call)
    {
        ArgumentNullException.ThrowIfNull(call);
        return Call(async () =>
        {
            await call().ConfigureAwait(false);
            return true;
        });
    }

    /// <summary>Failures that a later attempt may not have: timeouts and Orleans' own (messaging, membership).</summary>
    public static bool IsTransient(Exception e) => e is TimeoutException or OrleansException;
}

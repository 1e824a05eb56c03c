using System.Diagnostics;

namespace IsolateGrains.Cluster.Tests;

/// <summary>
/// Calls into the cluster with a short timeout of their own, retried. A call that went through a silo's gateway
/// when the silo died gets no answer until Orleans' response timeout (30 s); abandoning it after a few seconds and
/// sending it again reaches a live silo as soon as the cluster has noticed the death.
/// </summary>
public static class Calls
{
    /// <summary>
    /// Runs <paramref name="attempt"/> until one attempt answers within <paramref name="attemptTimeout"/>, retrying
    /// timeouts and Orleans failures for up to <paramref name="giveUpAfter"/>; then the last failure is thrown.
    /// An abandoned attempt may still run, so <paramref name="attempt"/> should be safe to repeat.
    /// </summary>
    public static async Task<T> RetryAsync<T>(Func<Task<T>> attempt, TimeSpan attemptTimeout, TimeSpan giveUpAfter)
    {
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            try
            {
                return await attempt().WaitAsync(attemptTimeout);
            }
            catch (Exception e) when (IsTransient(e) && Stopwatch.GetElapsedTime(started) < giveUpAfter)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary><see cref="RetryAsync{T}(Func{Task{T}}, TimeSpan, TimeSpan)"/> with 10 s attempts, for a minute.</summary>
    public static Task<T> RetryAsync<T>(Func<Task<T>> attempt) => RetryAsync(attempt, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(60));

    /// <summary>
    /// Failures that a later attempt may not have: this call's own timeout, and Orleans' (a dead silo or gateway,
    /// a rejected message, a storage conflict while a grain moves). A guest exception is not one of them.
    /// </summary>
    public static bool IsTransient(Exception e) => e is TimeoutException or OrleansException;
}

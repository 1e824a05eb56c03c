using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace IsolateGrains.Engine;

/// <summary>
/// The engine's metrics, on the <see cref="System.Diagnostics.Metrics"/> meter <c>IsolateGrains</c>
/// (collect them with OpenTelemetry, <c>dotnet-counters monitor -n IsolateGrains.Silo --counters IsolateGrains</c>,
/// or any <see cref="MeterListener"/>): live sandboxes and their memory, invocations and their latency,
/// traps, and snapshot sizes and save/restore times.
/// </summary>
internal static class SandboxMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "IsolateGrains";

    private static readonly Meter Meter = new(MeterName, typeof(SandboxMetrics).Assembly.GetName().Version?.ToString());
    private static readonly ConcurrentDictionary<Sandbox, byte> LiveSandboxes = new();

    private static readonly Counter<long> Invocations = Meter.CreateCounter<long>("isolategrains.invocations", "{call}", "Calls into sandboxes.");
    private static readonly Histogram<double> InvocationDuration = Meter.CreateHistogram<double>("isolategrains.invocation.duration", "ms", "Time of one call into a sandbox, event-loop pumping included.");
    private static readonly Counter<long> Traps = Meter.CreateCounter<long>("isolategrains.traps", "{trap}", "Sandboxes that faulted (trap, deadline, memory limit).");
    private static readonly Histogram<long> SnapshotSize = Meter.CreateHistogram<long>("isolategrains.snapshot.size", "By", "Size of captured sandbox snapshots.");
    private static readonly Histogram<double> SnapshotCaptureDuration = Meter.CreateHistogram<double>("isolategrains.snapshot.capture.duration", "ms", "Time to capture a snapshot.");
    private static readonly Histogram<double> SnapshotRestoreDuration = Meter.CreateHistogram<double>("isolategrains.snapshot.restore.duration", "ms", "Time to restore a sandbox from a snapshot.");

    static SandboxMetrics()
    {
        Meter.CreateObservableUpDownCounter("isolategrains.sandboxes.live", () => (long)LiveSandboxes.Count, "{sandbox}", "Sandboxes alive in this process.");
        Meter.CreateObservableUpDownCounter("isolategrains.sandboxes.memory", () => LiveSandboxes.Keys.Sum(s => s.ReportedMemoryBytes), "By", "Linear memory of the live sandboxes, as of their last call.");
    }

    /// <summary>A sandbox was created.</summary>
    public static void SandboxCreated(Sandbox sandbox)
    {
        sandbox.ReportedMemoryBytes = sandbox.MemoryBytes;
        LiveSandboxes[sandbox] = 0;
    }

    /// <summary>A sandbox was disposed.</summary>
    public static void SandboxDisposed(Sandbox sandbox) => LiveSandboxes.TryRemove(sandbox, out _);

    /// <summary>A call into a sandbox finished after <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public static void CallFinished(Sandbox sandbox, long started, long memoryBytes)
    {
        Invocations.Add(1);
        InvocationDuration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        // A plain field the gauge reads: no dictionary write on every call.
        sandbox.ReportedMemoryBytes = memoryBytes;
    }

    /// <summary>A sandbox faulted.</summary>
    public static void Trapped(string reason) => Traps.Add(1, new KeyValuePair<string, object?>("reason", reason));

    /// <summary>A snapshot was captured.</summary>
    public static void SnapshotCaptured(long bytes, TimeSpan duration)
    {
        SnapshotSize.Record(bytes);
        SnapshotCaptureDuration.Record(duration.TotalMilliseconds);
    }

    /// <summary>A sandbox was restored from a snapshot.</summary>
    public static void SnapshotRestored(TimeSpan duration) => SnapshotRestoreDuration.Record(duration.TotalMilliseconds);
}

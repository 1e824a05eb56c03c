using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace IsolateGrains.Tests;

/// <summary>The engine reports what it does on the <c>IsolateGrains</c> meter.</summary>
public sealed class MetricsTests
{
    [Fact]
    public void InvocationsTrapsSnapshotsAndLiveSandboxesAreMeasured()
    {
        var measurements = new ConcurrentDictionary<string, double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "IsolateGrains")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => measurements.AddOrUpdate(instrument.Name, value, (_, sum) => sum + value));
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => measurements.AddOrUpdate(instrument.Name, value, (_, sum) => sum + value));
        listener.Start();

        using var runtime = new IsolatedRuntime(TestHosts.Shared);
        runtime.Invoke(() => 1 + 1);
        runtime.CaptureSnapshot();
        Assert.Throws<IsolatedException>(() => runtime.Invoke(() => Environment.FailFast("metrics")));
        listener.RecordObservableInstruments();

        Assert.True(measurements.GetValueOrDefault("isolategrains.invocations") >= 2);
        Assert.True(measurements.GetValueOrDefault("isolategrains.invocation.duration") > 0);
        Assert.True(measurements.GetValueOrDefault("isolategrains.traps") >= 1);
        Assert.True(measurements.GetValueOrDefault("isolategrains.snapshot.size") > 0);
        Assert.True(measurements.GetValueOrDefault("isolategrains.sandboxes.live") >= 1);
        Assert.True(measurements.GetValueOrDefault("isolategrains.sandboxes.memory") > 0);
    }
}

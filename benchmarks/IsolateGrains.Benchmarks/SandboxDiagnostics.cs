using System.Diagnostics;

namespace IsolateGrains.Benchmarks;

/// <summary>
/// Breaks "new sandbox + first call" into its parts (<c>-- --diag</c>): instantiation, the first call
/// of a lambda (which loads the lambda's assembly into the fresh sandbox), later calls, page faults and
/// private memory. A tool for finding where time goes, not a benchmark.
/// </summary>
public static class SandboxDiagnostics
{
    public static int Run()
    {
        using var host = new IsolatedRuntimeHost(new IsolatedRuntimeHostOptions { Output = _ => { } }).WithBinDirectoryAssemblyLoader();
        var x = 1;
        for (var round = 0; round < 5; round++)
        {
            var faults = MinorFaults();
            var started = Stopwatch.GetTimestamp();
            using var runtime = new IsolatedRuntime(host);
            var created = Stopwatch.GetTimestamp();
            var createFaults = MinorFaults() - faults;
            runtime.Invoke(() => x + 1);
            var first = Stopwatch.GetTimestamp();
            var firstFaults = MinorFaults() - faults - createFaults;
            runtime.Invoke(() => x + 1);
            var second = Stopwatch.GetTimestamp();
            Console.WriteLine($"instantiate {Stopwatch.GetElapsedTime(started, created).TotalMilliseconds:0.00} ms ({createFaults} faults), " +
                $"first call {Stopwatch.GetElapsedTime(created, first).TotalMilliseconds:0.00} ms ({firstFaults} faults), " +
                $"second call {Stopwatch.GetElapsedTime(first, second).TotalMilliseconds:0.000} ms, linear memory {runtime.MemoryBytes / 1048576} MiB");
        }

        var before = Measure.PrivateResidentBytes();
        var runtimes = Enumerable.Range(0, 100).Select(_ => new IsolatedRuntime(host)).ToList();
        var afterCreate = Measure.PrivateResidentBytes();
        runtimes.ForEach(r => r.Invoke(() => x + 1));
        var afterCall = Measure.PrivateResidentBytes();
        Console.WriteLine($"private memory per sandbox: created {Measure.Bytes((afterCreate - before) / 100.0)}, after one call {Measure.Bytes((afterCall - before) / 100.0)}");
        runtimes.ForEach(r => r.Dispose());

        using var steady = new IsolatedRuntime(host);
        var samples = Measure.Samples(3000, () => steady.Invoke(() => x + 1));
        Console.WriteLine($"warm Invoke: p10 {Measure.Time(Measure.Percentile(samples, 0.1))}, p50 {Measure.Time(Measure.Median(samples))}, " +
            $"p90 {Measure.Time(Measure.Percentile(samples, 0.9))}, p99 {Measure.Time(Measure.Percentile(samples, 0.99))}");
        return 0;
    }

    /// <summary>Minor page faults of this process so far (Linux).</summary>
    private static long MinorFaults() => long.Parse(File.ReadAllText("/proc/self/stat").Split(") ")[1].Split(' ')[7]);
}

using System.Diagnostics;

namespace IsolateGrains.Benchmarks;

/// <summary>Breaks "new sandbox + first call" into its parts (<c>-- --diag</c>).</summary>
public static class SandboxDiagnostics
{
    public static int Run()
    {
        using var host = new IsolatedRuntimeHost(new IsolatedRuntimeHostOptions { Output = _ => { } }).WithBinDirectoryAssemblyLoader();
        var x = 1;
        for (var round = 0; round < 5; round++)
        {
            var t0 = Stopwatch.GetTimestamp();
            var runtime = new IsolatedRuntime(host);
            var t1 = Stopwatch.GetTimestamp();
            var rss0 = Measure.ResidentBytes();
            t1 = Stopwatch.GetTimestamp();
            runtime.Invoke(() => 2);
            var t2 = Stopwatch.GetTimestamp();
            runtime.Invoke(() => x + 1);
            var t3 = Stopwatch.GetTimestamp();
            runtime.Invoke(() => x + 1);
            var t4 = Stopwatch.GetTimestamp();
            var rss1 = Measure.ResidentBytes();
            Console.WriteLine($"instantiate {Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds:0.00} ms, first call (static) {Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds:0.00} ms, " +
                $"second (closure) {Stopwatch.GetElapsedTime(t2, t3).TotalMilliseconds:0.00} ms, third {Stopwatch.GetElapsedTime(t3, t4).TotalMilliseconds:0.000} ms, rss +{(rss1 - rss0) / 1048576.0:0.0} MiB, memory {runtime.MemoryBytes / 1048576} MiB");
        }
        return 0;
    }
}

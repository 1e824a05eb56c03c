using System.Diagnostics;

namespace IsolateGrains.Benchmarks;

/// <summary>
/// Breaks "new sandbox + first call" into its parts (<c>-- --diag</c>): instantiation, the first call
/// of a lambda, later calls, page faults and private memory, with and without the warm-start template.
/// Times are this thread's CPU time (wall time in brackets), so a busy machine distorts them less.
/// A tool for finding where time goes, not a benchmark.
/// </summary>
public static class SandboxDiagnostics
{
    public static int Run()
    {
        foreach (var warmStart in new[] { false, true })
        {
            Console.WriteLine($"== warm start {(warmStart ? "on" : "off")}");
            using var host = new IsolatedRuntimeHost(new IsolatedRuntimeHostOptions { Output = _ => { }, WarmStart = warmStart }).WithBinDirectoryAssemblyLoader();
            var x = 1;
            for (var round = 0; round < 5; round++)
            {
                var faults = MinorFaults();
                var (cpu0, wall0) = (Measure.ThreadCpuMicroseconds(), Stopwatch.GetTimestamp());
                using var runtime = new IsolatedRuntime(host);
                var (cpu1, wall1) = (Measure.ThreadCpuMicroseconds(), Stopwatch.GetTimestamp());
                var createFaults = MinorFaults() - faults;
                runtime.Invoke(() => x + 1);
                var (cpu2, wall2) = (Measure.ThreadCpuMicroseconds(), Stopwatch.GetTimestamp());
                var firstFaults = MinorFaults() - faults - createFaults;
                var later = new List<string>();
                for (var k = 0; k < 4; k++)
                {
                    var c = Measure.ThreadCpuMicroseconds();
                    runtime.Invoke(() => x + 1);
                    later.Add(Measure.Time(Measure.ThreadCpuMicroseconds() - c));
                }
                Console.WriteLine($"instantiate {Measure.Time(cpu1 - cpu0)} [{Measure.Time(Stopwatch.GetElapsedTime(wall0, wall1).TotalMicroseconds)}] ({createFaults} faults), " +
                    $"first call {Measure.Time(cpu2 - cpu1)} [{Measure.Time(Stopwatch.GetElapsedTime(wall1, wall2).TotalMicroseconds)}] ({firstFaults} faults), " +
                    $"later calls {string.Join(", ", later)}");
                // The host learned the lambda: let it prepare its warm-start template.
                host.PrepareAsync().GetAwaiter().GetResult();
            }

            for (var round = 0; round < 3; round++)
            {
                // The smallest request there is (an unknown method key, refused): what any first call costs a fresh sandbox.
                using var empty = new IsolatedRuntime(host);
                var refused = Protocol.GuestRequests.BadRequestReply("x");
                var request = new byte[] { 0x94, 0x01, 0xcf, 1, 2, 3, 4, 5, 6, 7, 8, 0xc0, 0xc0 };
                var e0 = Measure.ThreadCpuMicroseconds();
                empty.SandboxForTests.Call(request);
                var e1 = Measure.ThreadCpuMicroseconds();
                empty.SandboxForTests.Call(request);
                var e2 = Measure.ThreadCpuMicroseconds();
                Console.WriteLine($"smallest request in a fresh sandbox: first {Measure.Time(e1 - e0)}, second {Measure.Time(e2 - e1)}");
                GC.KeepAlive(refused);

                using (var objects = new IsolatedRuntime(host))
                {
                    var o0 = Measure.ThreadCpuMicroseconds();
                    using var counter = objects.CreateObject<ImageWarmupProbe.Counter>(0);
                    var o1 = Measure.ThreadCpuMicroseconds();
                    counter.Invoke<int, int>("Add", 1);
                    var o2 = Measure.ThreadCpuMicroseconds();
                    counter.Invoke<int, int>("Add", 1);
                    var o3 = Measure.ThreadCpuMicroseconds();
                    Console.WriteLine($"isolated object in a fresh sandbox: create {Measure.Time(o1 - o0)}, first call {Measure.Time(o2 - o1)}, second {Measure.Time(o3 - o2)}");
                }

                using var fresh = new IsolatedRuntime(host);
                var probe = ImageWarmupProbe.WithCapture(41);
                var c0 = Measure.ThreadCpuMicroseconds();
                var f0 = MinorFaults();
                fresh.Invoke(probe);
                var c1 = Measure.ThreadCpuMicroseconds();
                var f1 = MinorFaults();
                fresh.Invoke(probe);
                var c2 = Measure.ThreadCpuMicroseconds();
                fresh.Invoke(ImageWarmupProbe.WithoutResult(3));
                var c3 = Measure.ThreadCpuMicroseconds();
                Console.WriteLine($"image's own probe lambda in a fresh sandbox: first {Measure.Time(c1 - c0)} ({f1 - f0} faults), second {Measure.Time(c2 - c1)}, another probe lambda {Measure.Time(c3 - c2)}");
            }

            if (warmStart)
            {
                using var probe = new IsolatedRuntime(host);
                probe.Invoke(() => x + 1);
                var written = probe.WrittenPagesForDiagnostics();
                var runs = new List<(int Start, int Count)>();
                foreach (var page in written)
                {
                    if (runs.Count > 0 && runs[^1].Start + runs[^1].Count == page) runs[^1] = (runs[^1].Start, runs[^1].Count + 1);
                    else runs.Add((page, 1));
                }
                Console.WriteLine($"pages written by a first call: {written.Count} in {runs.Count} runs: " +
                    string.Join(" ", runs.Select(r => $"{r.Start * 4096L / 1048576.0:0.00}MiB+{r.Count}")));
            }

            var before = Measure.PrivateResidentBytes();
            var runtimes = Enumerable.Range(0, 100).Select(_ => new IsolatedRuntime(host)).ToList();
            var afterCreate = Measure.PrivateResidentBytes();
            runtimes.ForEach(r => r.Invoke(() => x + 1));
            var afterCall = Measure.PrivateResidentBytes();
            Console.WriteLine($"private memory per sandbox: created {Measure.Bytes((afterCreate - before) / 100.0)}, after one call {Measure.Bytes((afterCall - before) / 100.0)}");
            runtimes.ForEach(r => r.Dispose());
        }
        return 0;
    }

    /// <summary>Minor page faults of this process so far (Linux).</summary>
    private static long MinorFaults() => long.Parse(File.ReadAllText("/proc/self/stat").Split(") ")[1].Split(' ')[7]);
}

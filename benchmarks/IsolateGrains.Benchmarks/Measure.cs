using System.Diagnostics;

namespace IsolateGrains.Benchmarks;

/// <summary>Small timing helpers for the quick table.</summary>
internal static class Measure
{
    /// <summary>Runs <paramref name="action"/> <paramref name="count"/> times and returns each duration in microseconds, sorted.</summary>
    public static double[] Samples(int count, Action action)
    {
        var samples = new double[count];
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            action();
            samples[i] = Stopwatch.GetElapsedTime(started).TotalMicroseconds;
        }
        Array.Sort(samples);
        return samples;
    }

    /// <summary>Mean microseconds per operation over a tight loop of <paramref name="iterations"/>.</summary>
    public static double PerOperation(int iterations, Action action)
    {
        // Warm up as long as the measurement: the host's JIT tiers up, and so does the guest's interpreter
        // (after ~1,000 calls of each method, the deeper ones later), so the loop measures the steady state.
        for (var i = 0; i < iterations; i++)
        {
            action();
        }
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < iterations; i++)
        {
            action();
        }
        return Stopwatch.GetElapsedTime(started).TotalMicroseconds / iterations;
    }

    /// <summary>
    /// Like <see cref="PerOperation"/>, and also this thread's CPU time per operation: on a machine other work
    /// competes for, wall time includes waiting for a core, CPU time only the work itself. <paramref name="iterations"/> warm up, as many are measured.
    /// </summary>
    public static (double Wall, double Cpu) PerOperationWithCpu(int iterations, Action action)
    {
        for (var i = 0; i < iterations; i++)
        {
            action();
        }
        // Seven rounds, and the round of median wall time: a burst of load elsewhere on a shared machine spoils a round,
        // not the row.
        const int Rounds = 7;
        var perRound = Math.Max(1, iterations / Rounds);
        var rounds = new (double Wall, double Cpu)[Rounds];
        for (var round = 0; round < Rounds; round++)
        {
            var cpu = ThreadCpuMicroseconds();
            var started = Stopwatch.GetTimestamp();
            for (var i = 0; i < perRound; i++)
            {
                action();
            }
            rounds[round] = (Stopwatch.GetElapsedTime(started).TotalMicroseconds / perRound, (ThreadCpuMicroseconds() - cpu) / perRound);
        }
        return rounds.OrderBy(r => r.Wall).ElementAt(Rounds / 2);
    }

    /// <summary>Runs <paramref name="action"/> <paramref name="count"/> times and returns each one's thread CPU time in microseconds, sorted.</summary>
    public static double[] CpuSamples(int count, Action action)
    {
        var samples = new double[count];
        for (var i = 0; i < count; i++)
        {
            var started = ThreadCpuMicroseconds();
            action();
            samples[i] = ThreadCpuMicroseconds() - started;
        }
        Array.Sort(samples);
        return samples;
    }

    /// <summary>"wall (CPU cpu)".</summary>
    public static string WallAndCpu(double wall, double cpu) => $"{Time(wall)} (CPU {Time(cpu)})";

    /// <summary>The median of sorted samples.</summary>
    public static double Median(double[] sorted) => sorted[sorted.Length / 2];

    /// <summary>A percentile of sorted samples.</summary>
    public static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * p))];

    /// <summary>
    /// Private resident memory of this process after a full collection: its proportional share of anonymous
    /// and shared-memory pages (Linux <c>Pss_Anon + Pss_Shmem</c> from <c>/proc/self/smaps_rollup</c>). A page
    /// many sandboxes map (a warm-start template's) counts once in all, divided among them; file-backed
    /// pages, such as the runtime image every sandbox maps from the cache file, are left out.
    /// </summary>
    public static long PrivateResidentBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return PrivateResidentBytesOf(File.ReadAllText("/proc/self/smaps_rollup"));
    }

    /// <summary>Private resident bytes from the text of a <c>/proc/PID/smaps_rollup</c> file.</summary>
    public static long PrivateResidentBytesOf(string smapsRollup) => smapsRollup.Split('\n')
        .Where(line => line.StartsWith("Pss_Anon:", StringComparison.Ordinal) || line.StartsWith("Pss_Shmem:", StringComparison.Ordinal))
        .Sum(line => long.Parse(line.Split(':')[1].Trim().Split(' ')[0]) * 1024);

    /// <summary>CPU time this thread has used, in microseconds (Linux): unlike the wall clock, it does not count time spent waiting for a busy machine.</summary>
    public static unsafe double ThreadCpuMicroseconds()
    {
        TimeSpec time;
        return ClockGetTime(3 /* CLOCK_THREAD_CPUTIME_ID */, &time) == 0 ? (time.Seconds * 1e6) + (time.Nanoseconds / 1e3) : double.NaN;
    }

    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern unsafe int ClockGetTime(int clock, TimeSpec* time);

    /// <summary>Formats microseconds with a sensible unit.</summary>
    public static string Time(double microseconds) => microseconds switch
    {
        < 1 => $"{microseconds * 1000:0} ns",
        < 1000 => $"{microseconds:0.0} µs",
        < 1_000_000 => $"{microseconds / 1000:0.0} ms",
        _ => $"{microseconds / 1_000_000:0.00} s",
    };

    /// <summary>Formats bytes in MiB or KiB.</summary>
    public static string Bytes(double bytes) => bytes >= 1024 * 1024 ? $"{bytes / (1024 * 1024):0.00} MiB" : $"{bytes / 1024:0} KiB";
}

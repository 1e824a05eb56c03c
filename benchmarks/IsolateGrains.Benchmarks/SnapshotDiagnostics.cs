using System.Diagnostics;
using System.Numerics;
using IsolateGrains.Engine;
using IsolateGrains.Engine.Snapshots;
using IsolateGrains.Protocol;

namespace IsolateGrains.Benchmarks;

/// <summary>
/// Breaks the quick table's snapshot row (<c>-- --snapshots [samples] [--map] [--levels]</c>) into its parts:
/// for capture the guest's garbage collection, finding and comparing pages, and encoding; for restore the
/// decoding, instantiation, applying (also with the pages copied in place instead of by the kernel) and the
/// first call afterwards, which pays for the first use of the pages it touches. Each part is this thread's
/// CPU time, its wall time and its minor page faults, as medians, so a busy machine distorts them less.
/// <c>--map</c> lists the changed pages per MiB of memory; <c>--levels</c> compresses the chunks at several
/// zstd levels. A tool for finding where time goes, not a benchmark.
/// </summary>
public static class SnapshotDiagnostics
{
    /// <summary>The parts measured, in order.</summary>
    private static readonly string[] Parts =
    [
        "capture: total (public API)", "capture: guest GC", "capture: pages (page map, compare, XOR)", "capture: globals + host state", "capture: encode (zstd)",
        "restore: total (public API)", "restore: decode (zstd)", "restore: instantiate", "restore: apply", "restore: apply, pages copied in place",
        "restore: first call afterwards", "fresh sandbox (for comparison)",
    ];

    /// <summary>Runs the diagnostics and prints a table.</summary>
    public static int Run(string[] args)
    {
        var samples = args.Length > 0 && int.TryParse(args[0], out var count) ? count : 41;
        using var host = new IsolatedRuntimeHost(new IsolatedRuntimeHostOptions { Output = _ => { } }).WithBinDirectoryAssemblyLoader();
        // The quick table's sandbox: a small object with ten entries.
        using var runtime = new IsolatedRuntime(host);
        using var book = runtime.CreateObject<GrainRows.SmallObject>();
        for (var i = 0; i < 10; i++)
        {
            book.InvokeVoid("Add", "name" + i, i);
        }
        var encoded = runtime.CaptureSnapshot();
        var sandbox = runtime.SandboxForTests;
        using (var decoded = SandboxSnapshot.Decode(encoded))
        {
            Describe(sandbox, encoded, decoded, map: args.Contains("--map"));
            if (args.Contains("--levels"))
            {
                CompareLevels(decoded.ChunkData.ToArray());
            }
        }

        var results = Parts.ToDictionary(p => p, _ => new List<(double Cpu, double Wall, long Faults)>());
        for (var s = 0; s < samples; s++)
        {
            Time(results["capture: total (public API)"], () => runtime.CaptureSnapshot());
            Time(results["capture: guest GC"], () => GuestRequests.ReadReply(sandbox.Call(GuestRequests.CollectGarbage())));
            SandboxSnapshot? snapshot = null;
            Time(results["capture: pages (page map, compare, XOR)"], () => snapshot = SandboxSnapshotter.Capture(sandbox));
            Time(results["capture: globals + host state"], () => { SandboxSnapshotter.CaptureGlobals(sandbox); SandboxSnapshotter.CaptureHostState(sandbox); });
            Time(results["capture: encode (zstd)"], () => snapshot!.Encode());
            snapshot!.Dispose();

            Time(results["restore: total (public API)"], () => IsolatedRuntime.Restore(host, encoded).Dispose());
            SandboxSnapshot? decoded = null;
            Time(results["restore: decode (zstd)"], () => decoded = SandboxSnapshot.Decode(encoded));
            Sandbox? fresh = null;
            Time(results["restore: instantiate"], () => fresh = host.CreateSandbox(null, warmStart: false));
            Time(results["restore: apply"], () => SandboxSnapshotter.Apply(fresh!, decoded!));
            fresh!.Dispose();
            fresh = host.CreateSandbox(null, warmStart: false);
            Time(results["restore: apply, pages copied in place"], () => SandboxSnapshotter.Apply(fresh, decoded!, useKernelWriter: false));
            fresh.Dispose();
            decoded!.Dispose();
            using (var restored = IsolatedRuntime.Restore(host, encoded))
            {
                Time(results["restore: first call afterwards"], () => restored.Invoke(() => 2));
            }
            Time(results["fresh sandbox (for comparison)"], () => new IsolatedRuntime(host).Dispose());
        }

        Console.WriteLine($"{"part",-42} {"cpu",10} {"wall",10} {"faults",7}   (medians of {samples})");
        foreach (var part in Parts)
        {
            var r = results[part];
            Console.WriteLine($"{part,-42} {Measure.Time(Median(r.Select(x => x.Cpu))),10} {Measure.Time(Median(r.Select(x => x.Wall))),10} {Median(r.Select(x => (double)x.Faults)),7:0}");
        }
        return 0;
    }

    /// <summary>Prints what the snapshot holds, and with <paramref name="map"/> where its pages lie.</summary>
    private static void Describe(Sandbox sandbox, byte[] encoded, SandboxSnapshot decoded, bool map)
    {
        var baseline = sandbox.Image.Baseline;
        var chunks = decoded.ChunkMasks.Sum(m => BitOperations.PopCount(m));
        var full = decoded.ChunkMasks.Count(m => m == ulong.MaxValue);
        var raw = decoded.RawMasks.Sum(m => BitOperations.PopCount(m));
        var runs = decoded.PageIndices.Where((p, i) => i == 0 || decoded.PageIndices[i - 1] + 1 != p).Count();
        Console.WriteLine($"snapshot: {encoded.Length:N0} bytes; memory {decoded.MemoryBytes / 1048576.0:0.0} MiB (image {baseline.Length / 1048576.0:0.0} MiB); " +
            $"{decoded.PageIndices.Length} pages ({full} wholly changed) in {runs} runs; {chunks} chunks ({raw} stored as they are) = {decoded.ChunkData.Length:N0} bytes; " +
            $"{decoded.Globals.Count} globals; {decoded.HostState.Scratch.Count} scratch entries; kernel writes pages: {KernelMemoryWriter.IsAvailable}");
        if (!map)
        {
            return;
        }
        var pageSize = decoded.PageSize;
        foreach (var group in decoded.PageIndices.Select((page, i) => (Page: page, Mask: decoded.ChunkMasks[i])).GroupBy(x => (long)x.Page * pageSize / 1048576))
        {
            var zeroInImage = group.Count(x => (long)(x.Page + 1) * pageSize > baseline.Length || baseline.Span((long)x.Page * pageSize, pageSize).IndexOfAnyExcept((byte)0) < 0);
            Console.WriteLine($"  at {group.Key,4} MiB: {group.Count(),4} pages ({zeroInImage} zeros in the image), {group.Sum(x => BitOperations.PopCount(x.Mask)),5} chunks, {group.Count(x => x.Mask == ulong.MaxValue)} wholly changed");
        }
    }

    /// <summary>Compresses <paramref name="data"/> at several zstd levels: size and CPU time to compress and decompress.</summary>
    private static void CompareLevels(byte[] data)
    {
        var output = new byte[ZstdSharp.Compressor.GetCompressBound(data.Length)];
        var back = new byte[data.Length];
        foreach (var level in new[] { -7, -3, -1, 1, 2, 3 })
        {
            using var compressor = new ZstdSharp.Compressor(level);
            using var decompressor = new ZstdSharp.Decompressor();
            var length = 0;
            var compress = new List<double>();
            var decompress = new List<double>();
            for (var k = 0; k < 25; k++)
            {
                var c0 = Measure.ThreadCpuMicroseconds();
                length = compressor.Wrap(data, output);
                var c1 = Measure.ThreadCpuMicroseconds();
                decompressor.Unwrap(output.AsSpan(0, length), back);
                compress.Add(c1 - c0);
                decompress.Add(Measure.ThreadCpuMicroseconds() - c1);
            }
            Console.WriteLine($"zstd level {level,2}: {length,9:N0} bytes, compress {Measure.Time(Median(compress))}, decompress {Measure.Time(Median(decompress))} (cpu)");
        }
    }

    /// <summary>Runs <paramref name="action"/> once and adds its CPU time, wall time and page faults to <paramref name="into"/>.</summary>
    private static void Time(List<(double, double, long)> into, Action action)
    {
        var faults = MinorFaults();
        var cpu = Measure.ThreadCpuMicroseconds();
        var wall = Stopwatch.GetTimestamp();
        action();
        var wallMicroseconds = Stopwatch.GetElapsedTime(wall).TotalMicroseconds;
        into.Add((Measure.ThreadCpuMicroseconds() - cpu, wallMicroseconds, MinorFaults() - faults));
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    /// <summary>Minor page faults of this process so far (Linux).</summary>
    private static long MinorFaults() => long.Parse(File.ReadAllText("/proc/self/stat").Split(") ")[1].Split(' ')[7]);
}

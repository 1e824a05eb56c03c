using System.Diagnostics;
using IsolateGrains.Engine;
using IsolateGrains.Engine.Snapshots;
using IsolateGrains.Protocol;
using Xunit.Abstractions;

namespace IsolateGrains.Tests;

/// <summary>
/// Whole-sandbox snapshots: a sandbox's statics, objects, scratch files and clock survive capture and
/// restore (into a new runtime, another host), forks diverge, and foreign or damaged snapshots are
/// refused with a message that says why. Sandbox lambdas live in static helpers so that they capture
/// only their parameters.
/// </summary>
public sealed class SandboxSnapshotTests(ITestOutputHelper output)
{
    [Fact]
    public void StaticsAndObjectsSurviveRestoreIntoANewRuntime()
    {
        using var original = new IsolatedRuntime(TestHosts.Shared);
        Populate(original, counter: 41);
        Increment(original, 1);

        var snapshot = original.CaptureSnapshot();
        using var restored = IsolatedRuntime.Restore(TestHosts.Shared, snapshot);

        Assert.Equal("42|answer=42,name=snapshot", Describe(restored));
        Assert.Equal(43, Increment(restored, 1));
        Assert.Equal("43|answer=42,name=snapshot", Describe(restored));
        // The original is untouched by the restore and by the restored sandbox's calls.
        Assert.Equal("42|answer=42,name=snapshot", Describe(original));
        Assert.NotEqual(original.Name, restored.Name);
    }

    [Fact]
    public void StateSurvivesRestoreIntoAnotherHost()
    {
        byte[] snapshot;
        using (var original = new IsolatedRuntime(TestHosts.Shared))
        {
            Populate(original, counter: 7);
            snapshot = original.CaptureSnapshot();
        }

        // Another host instance loading the same image stands in for another process or machine.
        using var otherHost = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        using (var restored = IsolatedRuntime.Restore(otherHost, snapshot, "restored-elsewhere"))
        {
            Assert.Equal("restored-elsewhere", restored.Name);
            Assert.Equal("7|answer=42,name=snapshot", Describe(restored));
            Assert.Equal(8, Increment(restored, 1));

            // And back again: a snapshot of the restored sandbox restores on the first host.
            using var back = IsolatedRuntime.Restore(TestHosts.Shared, restored.CaptureSnapshot());
            Assert.Equal("8|answer=42,name=snapshot", Describe(back));
        }
    }

    [Fact]
    public void ScratchFilesTheCurrentDirectoryAndTheClockSurvive()
    {
        using var original = new IsolatedRuntime(TestHosts.Shared);
        var before = WriteScratchFiles(original);
        var snapshot = original.CaptureSnapshot();

        using var otherHost = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        using var restored = IsolatedRuntime.Restore(otherHost, snapshot);
        var (files, directory, ticks) = ReadScratchFiles(restored);

        Assert.Equal("/tmp/work/a.txt=alpha beta;/tmp/work/deep/b.bin=3 bytes;/tmp/work/empty=dir", files);
        Assert.Equal("/tmp/work", directory);
        // The guest's monotonic clock continues from the snapshot; it does not start over in the new host.
        Assert.True(ticks >= before, $"The guest clock went back from {before} to {ticks} ms.");
        // Files written after the restore work as usual, and the original's files are its own.
        Assert.Equal("alpha beta gamma", AppendScratch(restored, " gamma"));
        Assert.Equal("alpha beta", ReadScratchFiles(original).Files.Split(';')[0].Split('=')[1]);
    }

    [Fact]
    public void AForkDivergesFromItsParent()
    {
        using var parent = new IsolatedRuntime(TestHosts.Shared);
        Populate(parent, counter: 100);

        using var fork = parent.Fork("the-fork");
        Assert.Equal("the-fork", fork.Name);
        Assert.Equal("100|answer=42,name=snapshot", Describe(fork));

        Assert.Equal(101, Increment(parent, 1));
        Assert.Equal(150, Increment(fork, 50));
        SetEntry(fork, "fork-only", "yes");

        Assert.Equal("101|answer=42,name=snapshot", Describe(parent));
        Assert.Equal("150|answer=42,fork-only=yes,name=snapshot", Describe(fork));

        // A fork of the fork, then both keep working.
        using var grandchild = fork.Fork();
        Assert.Equal(151, Increment(grandchild, 1));
        Assert.Equal(152, Increment(parent, 51));
        Assert.Equal(150, Increment(fork, 0));
    }

    [Fact]
    public void MemoryTheSandboxGrewIsRestored()
    {
        using var original = new IsolatedRuntime(TestHosts.Shared);
        var imageBytes = original.MemoryBytes;
        var checksum = FillLargeBuffer(original, 48 * 1024 * 1024);
        Assert.True(original.MemoryBytes > imageBytes + (32L * 1024 * 1024), "The buffer should have grown the sandbox's memory past its image.");

        var snapshot = original.CaptureSnapshot();
        using var restored = IsolatedRuntime.Restore(TestHosts.Shared, snapshot);

        Assert.Equal(original.MemoryBytes, restored.MemoryBytes);
        Assert.Equal(checksum, LargeBufferChecksum(restored));
        output.WriteLine($"48 MiB buffer: {IsolatedSnapshotInfo.Read(snapshot)}");
    }

    [Fact]
    public void ASnapshotFromAnotherImageIsRefused()
    {
        var snapshot = SmallSnapshot();
        var foreign = SandboxSnapshot.RewriteHeader(snapshot, h => h with { Identity = h.Identity with { ImageKey = "0123456789abcdef0123456789abcdef" } });

        var error = RestoreFails(foreign);

        Assert.Contains("taken from image 0123456789abcdef0123456789abcdef", error.Message);
        Assert.Contains($"this host runs image {TestHosts.Shared.Image.ImageKey}", error.Message);
        Assert.False(error.IsFatal);
    }

    [Fact]
    public void ASnapshotFromAnotherBuildOfTheSameImageIsRefused()
    {
        // The image's memory hash is checked as well as its key: a snapshot over other bytes is never applied.
        var snapshot = SmallSnapshot();
        var foreign = SandboxSnapshot.RewriteHeader(snapshot, h => h with { Identity = h.Identity with { ImageHash = "ffffffffffffffffffffffffffffffff" } });

        var error = RestoreFails(foreign);

        Assert.Contains("with memory ffffffffffffffffffffffffffffffff", error.Message);
        Assert.Contains("must run the same build of IsolateGrains", error.Message);
    }

    [Fact]
    public void ASnapshotFromAnotherRuntimeVersionIsRefused()
    {
        var snapshot = SmallSnapshot();
        var foreign = SandboxSnapshot.RewriteHeader(snapshot, h => h with { Identity = h.Identity with { RuntimeVersion = "9.0.0" } });

        var error = RestoreFails(foreign);

        Assert.Contains("runtime 9.0.0", error.Message);
        Assert.Contains($"this host runs runtime {WasmRuntimePack.RuntimePackVersion}", error.Message);
        Assert.Equal("10.0.12", WasmRuntimePack.RuntimePackVersion);
    }

    [Fact]
    public void GarbageIsRefused()
    {
        var random = new byte[4096];
        new Random(1).NextBytes(random);

        Assert.Contains("does not start like a sandbox snapshot", RestoreFails([]).Message);
        Assert.Contains("does not start like a sandbox snapshot", RestoreFails(random).Message);
        Assert.Contains("does not start like a sandbox snapshot", RestoreFails("{\"not\":\"a snapshot\"}"u8.ToArray()).Message);
        Assert.Contains("header is truncated or damaged", RestoreFails([.. "IGSNAP"u8, (byte)SandboxSnapshot.FormatVersion, 0]).Message);
        Assert.Contains("format version 99", RestoreFails([.. "IGSNAP"u8, 99, 0, 1, 2, 3]).Message);
        // Version 1 stored every chunk XOR the image; this host does not read it, and says which versions it reads.
        Assert.Contains($"format version 1, this host reads versions 2 to {SandboxSnapshot.FormatVersion}", RestoreFails([.. "IGSNAP"u8, 1, 0, 1, 2, 3]).Message);
    }

    [Fact]
    public void SnapshotsSavedInTheEarlierFormatStillRestore()
    {
        // Version 2 kept the body in one zstd frame; snapshots saved by it (in grain storage, say) must still restore.
        using var original = new IsolatedRuntime(TestHosts.Shared);
        Populate(original, counter: 9);
        var current = original.CaptureSnapshot();
        var (header, body) = ReadFrames(current);
        Assert.Equal(3, header.Version);

        using var compressor = new ZstdSharp.Compressor(1);
        var earlier = Relabel(current, header, version: 2, compressor.Wrap(body).ToArray());
        using var restored = IsolatedRuntime.Restore(TestHosts.Shared, earlier);

        Assert.Equal("9|answer=42,name=snapshot", Describe(restored));
    }

    [Fact]
    public void AFrameTableThatDoesNotAddUpIsRefused()
    {
        var snapshot = SmallSnapshot();
        var header = SandboxSnapshot.ReadHeader(snapshot);
        var compressed = snapshot.AsSpan(header.BodyStart, header.CompressedLength).ToArray();

        var tooMany = compressed.ToArray();
        tooMany[0] = 200;
        var shortBody = compressed.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(shortBody.AsSpan(5), System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(shortBody.AsSpan(5)) - 1);

        Assert.Contains("body cannot be decompressed", RestoreFails(Relabel(snapshot, header, version: 3, tooMany)).Message);
        Assert.Contains("body cannot be decompressed", RestoreFails(Relabel(snapshot, header, version: 3, shortBody)).Message);
    }

    /// <summary>A version 3 snapshot's header and its whole body (its frames decompressed and put together).</summary>
    private static (SnapshotHeader Header, byte[] Body) ReadFrames(byte[] snapshot)
    {
        var header = SandboxSnapshot.ReadHeader(snapshot);
        var region = snapshot.AsSpan(header.BodyStart, header.CompressedLength);
        var frames = region[0];
        var body = new List<byte>();
        var at = 1 + (frames * 8);
        using var decompressor = new ZstdSharp.Decompressor();
        for (var i = 0; i < frames; i++)
        {
            var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(region[(1 + (i * 8))..]);
            body.AddRange(decompressor.Unwrap(region.Slice(at, length)).ToArray());
            at += length;
        }
        return (header, body.ToArray());
    }

    /// <summary>The snapshot with another version and compressed region (the header's last field is the region's length), checksum redone.</summary>
    private static byte[] Relabel(byte[] snapshot, SnapshotHeader header, ushort version, byte[] region)
    {
        var bytes = new List<byte>(snapshot[..header.BodyStart]);
        bytes[6] = (byte)version;
        bytes[7] = (byte)(version >> 8);
        var length = BitConverter.GetBytes(region.Length);
        for (var i = 0; i < 4; i++)
        {
            bytes[header.BodyStart - 4 + i] = length[i];
        }
        bytes.AddRange(region);
        bytes.AddRange(BitConverter.GetBytes(System.IO.Hashing.XxHash64.HashToUInt64(bytes.ToArray())));
        return bytes.ToArray();
    }

    [Fact]
    public void TruncatedOrCorruptSnapshotsAreRefused()
    {
        var snapshot = SmallSnapshot();

        foreach (var length in new[] { 9, 40, snapshot.Length / 2, snapshot.Length - 9, snapshot.Length - 1 })
        {
            var error = RestoreFails(snapshot[..length]);
            Assert.Matches("truncated", error.Message);
        }

        var flipped = snapshot.ToArray();
        flipped[snapshot.Length / 2] ^= 0x40;
        Assert.Contains("corrupt (its checksum does not match", RestoreFails(flipped).Message);

        Assert.Contains("bytes more than", RestoreFails([.. snapshot, 0]).Message);
        Assert.Throws<IsolatedException>(() => IsolatedSnapshotInfo.Read(snapshot[..100]));
    }

    [Fact]
    public void ASnapshotOfASandboxHoldingASmallObjectIsSmall()
    {
        var host = TestHosts.Shared;
        using var runtime = new IsolatedRuntime(host);
        HoldSmallObject(runtime);

        var timings = new Dictionary<string, List<double>>();
        byte[] snapshot = [];
        for (var i = 0; i < 7; i++)
        {
            Increment(runtime, 1);
            snapshot = Time(timings, "CaptureSnapshot", runtime.CaptureSnapshot);
            using var restored = Time(timings, "Restore", () => IsolatedRuntime.Restore(host, snapshot));
            Assert.Equal("Ann:5", Time(timings, "first call after Restore", () => DescribeSmallObject(restored)));
            using var fork = Time(timings, "Fork", () => runtime.Fork());
            Assert.Equal("Ann:5", DescribeSmallObject(fork));
        }

        var info = IsolatedSnapshotInfo.Read(snapshot);
        output.WriteLine($"Snapshot of a sandbox holding a small object: {info}");
        output.WriteLine($"Memory that differs from the image: {info.ChangedBytes / 1024.0:N0} KiB before compression; pagemap used: {host.Image.Baseline.PageMapWorks}");
        foreach (var (name, values) in timings)
        {
            values.Sort();
            output.WriteLine($"{name,-26} first {values[0],7:0.00} ms   median {values[values.Count / 2],7:0.00} ms   (of {values.Count})");
        }
        Assert.True(snapshot.Length < 2 * 1024 * 1024, $"The snapshot is {snapshot.Length:N0} bytes.");
        Assert.Equal(snapshot.Length, info.SizeBytes);
        Assert.Equal(TestHosts.Shared.Image.ImageKey, info.ImageKey);
    }

    [Fact]
    public void TheRestoredSandboxHasTheOriginalsMemoryAndGlobals()
    {
        var image = TestHosts.Shared.Image;
        using var original = TestHosts.Shared.CreateSandbox("snapshot-original");
        GuestRequests.ReadReply(original.Call(GuestRequests.Warmup()));

        // Where the page map works, the pages it finds must be exactly those a full comparison finds.
        using var viaPageMap = SandboxSnapshotter.Capture(original);
        using var viaComparison = SandboxSnapshotter.Capture(original, usePageMap: false);
        Assert.Equal(viaComparison.PageIndices, viaPageMap.PageIndices);
        Assert.Equal(viaComparison.ChunkMasks, viaPageMap.ChunkMasks);
        Assert.True(viaComparison.ChunkData.Span.SequenceEqual(viaPageMap.ChunkData.Span));
        if (OperatingSystem.IsLinux())
        {
            Assert.True(image.Baseline.PageMapWorks, "/proc/self/pagemap should tell written pages on Linux.");
        }

        using var restored = Sandbox.Restore(image, "snapshot-restored", _ => [], viaPageMap);
        var length = checked((int)original.MemoryBytes);
        Assert.Equal(original.MemoryBytes, restored.MemoryBytes);
        Assert.True(original.Exports.Memory.GetSpan(0, length).SequenceEqual(restored.Exports.Memory.GetSpan(0, length)));
        foreach (var (_, name, _) in image.Baseline.MutableGlobals)
        {
            Assert.Equal(original.Instance.GetGlobal(name)!.GetValue(), restored.Instance.GetGlobal(name)!.GetValue());
        }
        Assert.Equal(original.DispatchMethod, restored.DispatchMethod);
        Assert.Equal(original.MailboxAddress, restored.MailboxAddress);
        // The restored clock continues from the capture: not before it, and not ahead of the original's.
        Assert.InRange(restored.MonotonicNowMs, viaPageMap.HostState.MonotonicMilliseconds, original.MonotonicNowMs);

        // Where the kernel cannot write the pages (some containers forbid it), they are copied in place: the same memory.
        using var copied = TestHosts.Shared.CreateSandbox("snapshot-copied", warmStart: false);
        SandboxSnapshotter.Apply(copied, viaPageMap, useKernelWriter: false);
        Assert.True(original.Exports.Memory.GetSpan(0, length).SequenceEqual(copied.Exports.Memory.GetSpan(0, length)));

        // A sandbox something has run in cannot take a snapshot over its own state.
        Assert.Throws<InvalidOperationException>(() => original.ApplySnapshot(viaPageMap));
    }

    [Fact]
    public async Task ASnapshotIsRefusedWhileAnAsynchronousCallIsRunning()
    {
        using var runtime = new IsolatedRuntime(TestHosts.Shared);
        using var cancel = new CancellationTokenSource();
        var running = DelayInGuest(runtime, 30_000, cancel.Token);

        var error = Assert.Throws<IsolatedException>(() => runtime.CaptureSnapshot());
        Assert.Contains("1 asynchronous call(s) into it are still running", error.Message);
        Assert.Throws<IsolatedException>(() => runtime.Fork());

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        Assert.True(runtime.CaptureSnapshot().Length > 0);
    }

    private static byte[] SmallSnapshot()
    {
        using var runtime = new IsolatedRuntime(TestHosts.Shared);
        Populate(runtime, counter: 1);
        return runtime.CaptureSnapshot();
    }

    private static IsolatedException RestoreFails(byte[] snapshot) =>
        Assert.Throws<IsolatedException>(() => IsolatedRuntime.Restore(TestHosts.Shared, snapshot));

    private static T Time<T>(Dictionary<string, List<double>> timings, string name, Func<T> action)
    {
        var started = Stopwatch.GetTimestamp();
        var result = action();
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        (timings.TryGetValue(name, out var list) ? list : timings[name] = []).Add(elapsed);
        return result;
    }

    private static void Populate(IsolatedRuntime runtime, int counter) => runtime.Invoke(() =>
    {
        GuestState.Counter = counter;
        GuestState.Map["answer"] = "42";
        GuestState.Map["name"] = "snapshot";
    });

    private static Task DelayInGuest(IsolatedRuntime runtime, int milliseconds, CancellationToken cancellationToken) =>
        runtime.InvokeAsync(async () => await Task.Delay(milliseconds), cancellationToken);

    private static int Increment(IsolatedRuntime runtime, int by) => runtime.Invoke(() => GuestState.Counter += by);

    private static void SetEntry(IsolatedRuntime runtime, string key, string value) => runtime.Invoke(() => GuestState.Map[key] = value);

    private static string Describe(IsolatedRuntime runtime) => runtime.Invoke(() => GuestState.Describe());

    private static void HoldSmallObject(IsolatedRuntime runtime) => runtime.Invoke(() => GuestState.Held = new SmallObject("Ann", 5));

    private static string DescribeSmallObject(IsolatedRuntime runtime) => runtime.Invoke(() => GuestState.Held is SmallObject o ? o.Name + ":" + o.Age : "none");

    private static long WriteScratchFiles(IsolatedRuntime runtime) => runtime.Invoke(() =>
    {
        Directory.CreateDirectory("/tmp/work/deep");
        Directory.CreateDirectory("/tmp/work/empty");
        File.WriteAllText("/tmp/work/a.txt", "alpha");
        File.AppendAllText("/tmp/work/a.txt", " beta");
        File.WriteAllBytes("/tmp/work/deep/b.bin", [1, 2, 3]);
        Directory.SetCurrentDirectory("/tmp/work");
        return Environment.TickCount64;
    });

    private static (string Files, string Directory, long Ticks) ReadScratchFiles(IsolatedRuntime runtime) =>
        runtime.Invoke(() => (GuestState.ListScratch(), Directory.GetCurrentDirectory(), Environment.TickCount64));

    private static string AppendScratch(IsolatedRuntime runtime, string text) => runtime.Invoke(() =>
    {
        File.AppendAllText("a.txt", text);
        return File.ReadAllText("/tmp/work/a.txt");
    });

    private static long FillLargeBuffer(IsolatedRuntime runtime, int length) => runtime.Invoke(() =>
    {
        // A pattern that differs on every page, written in blocks (a byte loop is slow in the interpreter).
        var buffer = new byte[length];
        var block = new byte[4096];
        for (var i = 0; i < block.Length; i++)
        {
            block[i] = (byte)(i * 7);
        }
        for (var offset = 0; offset + block.Length <= buffer.Length; offset += block.Length)
        {
            block.CopyTo(buffer, offset);
            BitConverter.TryWriteBytes(buffer.AsSpan(offset), offset);
        }
        GuestState.Large = buffer;
        return Checksum(buffer);
    });

    private static long LargeBufferChecksum(IsolatedRuntime runtime) => runtime.Invoke(() => Checksum(GuestState.Large!));

    private static long Checksum(byte[] buffer)
    {
        long sum = 0;
        for (var i = 0; i < buffer.Length; i += 61)
        {
            sum = (sum * 31) + buffer[i];
        }
        return sum + buffer.Length;
    }

    /// <summary>
    /// State inside the sandbox (each sandbox has its own copy of these statics), and what the sandbox
    /// lambdas run (here rather than in the lambdas: a lambda that holds a nested lambda cannot be sent).
    /// </summary>
    private static class GuestState
    {
        public static int Counter;
        public static readonly Dictionary<string, string> Map = new(StringComparer.Ordinal);
        public static object? Held;
        public static byte[]? Large;

        public static string Describe() =>
            Counter + "|" + string.Join(",", Map.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value));

        public static string ListScratch()
        {
            var entries = new List<string>();
            foreach (var path in Directory.GetFileSystemEntries("/tmp/work", "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                if (Directory.Exists(path))
                {
                    if (Directory.GetFileSystemEntries(path).Length == 0)
                    {
                        entries.Add(path + "=dir");
                    }
                }
                else
                {
                    entries.Add(path.EndsWith(".bin", StringComparison.Ordinal) ? path + "=" + File.ReadAllBytes(path).Length + " bytes" : path + "=" + File.ReadAllText(path));
                }
            }
            return string.Join(";", entries);
        }
    }

    /// <summary>A small object a sandbox holds.</summary>
    private sealed record SmallObject(string Name, int Age);
}

using IsolateGrains.Protocol;
using IsolateGrains.Engine.Boot;
using IsolateGrains.Engine.FileSystem;
using Wasmtime;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// Wizer, in C#: boots the runtime once, warms the paths every call takes, and writes a new module
/// whose memory is that booted runtime (one dense data segment, so Wasmtime maps it copy-on-write)
/// and whose globals start where the booted instance left them. A new sandbox is then an
/// instantiation of that module, not a boot.
/// </summary>
internal static class PreinitializedImageBuilder
{
    /// <summary>Builds the pre-initialized module bytes and the host state that goes with them.</summary>
    public static (byte[] Module, ImageState State) Build(SandboxEngine engine, WasmRuntimePack pack, VirtualFileSystem fileSystem, Action<string, string>? trace)
    {
        var original = File.ReadAllBytes(pack.NativeModulePath);
        var instrumented = WasmModuleRewriter.ExportDefinedGlobals(original, WasmModuleRewriter.GlobalExportPrefix);
        using var bootModule = Module.FromBytes(engine.Engine, "dotnet-boot", instrumented);

        // The builder's own limits: generous, since the image is shared by hosts with any limits.
        var limits = new SandboxLimits(MaxMemoryBytes: 1L << 31, CallTimeout: TimeSpan.FromMinutes(5), MaxPayloadBytes: 64 * 1024 * 1024, MaxScratchBytes: 1024 * 1024);
        var bootImage = new SandboxImage(engine, bootModule, ImageState.Unbooted, fileSystem, limits, BuildClock.Instance,
            line => trace?.Invoke(line.Sandbox, line.Text), trace) { Deterministic = true };
        // The only assembly beyond the runtime's own that the builder serves is this library, for the probes.
        var probeAssembly = typeof(ImageWarmupProbe).Assembly;
        using var sandbox = new Sandbox(bootImage, "image-builder", request => AnswerProbeCallback(request) ?? HostRequests.Handle(request,
            name => name.StartsWith(probeAssembly.GetName().Name + ",", StringComparison.Ordinal) ? File.ReadAllBytes(probeAssembly.Location) : null));

        RuntimeBooter.Boot(sandbox, pack);
        GuestRequests.ReadReply(sandbox.Call(GuestRequests.Warmup()));
        WarmUserPaths(sandbox);
        // Capture an empty nursery: the first calls of every sandbox then allocate without collecting.
        GuestRequests.ReadReply(sandbox.Call(GuestRequests.CollectGarbage()));

        var memory = sandbox.Exports.Memory.GetSpan(0, checked((int)sandbox.Exports.Memory.GetLength())).ToArray();
        var globals = WasmModuleRewriter.ReadDefinedGlobals(instrumented)
            .Where(g => g.IsMutable)
            .Select(g => (g.Index, WasmGlobalBits.From(sandbox.Instance.GetGlobal(WasmModuleRewriter.GlobalExportPrefix + g.Index)!.GetValue())))
            .ToArray();
        var state = sandbox.CaptureState() with { MemoryHash = ImageBaseline.HashMemory(memory) };
        return (WasmModuleRewriter.BuildPreinitializedModule(instrumented, memory, globals), state);
    }

    /// <summary>
    /// How often the builder runs each probe. Mono's interpreter first runs a method from a quick, unoptimized
    /// translation and counts its calls; past about a thousand it translates it again, optimized. Running the
    /// call paths past that point here means every sandbox starts with them optimized, and does not write
    /// call counters into (and so copy) pages of the image on its first calls.
    /// </summary>
    private const int ProbeRounds = 1100;

    /// <summary>Runs user-like lambdas from an assembly the sandbox must fetch from the host, <see cref="ProbeRounds"/> times each.</summary>
    private static void WarmUserPaths(Sandbox sandbox)
    {
        for (var round = 0; round < ProbeRounds; round++)
        {
            Expect(sandbox, ImageWarmupProbe.WithCapture(41), 42);
            var user = Run<ImageWarmupProbe.ProbeResult>(sandbox, ImageWarmupProbe.WithUserType("probe"));
            if (user is not { Name: "probe", Length: 5, Items.Count: 3 })
            {
                throw new IsolatedException("The sandbox returned a wrong answer while its image was being built.");
            }
            Run<object>(sandbox, ImageWarmupProbe.WithoutResult(round));
            // A host that has not sent this method to this sandbox yet sends its descriptor again (skipped by the guest).
            Expect(sandbox, ImageWarmupProbe.WithCapture(round), round + 1, resendDescriptor: true);
        }
        WarmObjectAndCallbackPaths(sandbox);
        // Paths that are rarer but must not cost a fresh sandbox tens of milliseconds the first time:
        // guest exceptions and refused requests.
        for (var round = 0; round < ProbeRounds / 10; round++)
        {
            try
            {
                Run<int>(sandbox, ImageWarmupProbe.Throwing(round + 1));
                throw new IsolatedException("The sandbox did not report the probe's exception while its image was being built.");
            }
            catch (IsolatedException e) when (e.GuestExceptionType == typeof(InvalidOperationException).FullName)
            {
            }
            var unknown = GuestRequests.InvokeDelegateByKeyOnly(0x1500_0000_0000_0000UL + (ulong)round);
            try
            {
                GuestRequests.ReadReply(sandbox.Call(unknown));
                throw new IsolatedException("The sandbox accepted an unknown method while its image was being built.");
            }
            catch (IsolatedException e) when (e.GuestExceptionType is null)
            {
            }
        }
    }

    /// <summary>Creates an isolated object and calls its method by name, and calls the host from guest code, <see cref="ProbeRounds"/> times each.</summary>
    private static void WarmObjectAndCallbackPaths(Sandbox sandbox)
    {
        var created = GuestRequests.ReadReply(sandbox.Call(GuestRequests.CreateObject(
            typeof(ImageWarmupProbe).Assembly.GetName().Name!, typeof(ImageWarmupProbe.Counter).FullName!, [0], _ => null)))
            ?? throw new IsolatedException("The sandbox created no object while its image was being built.");
        var reader = new MessagePack.MessagePackReader(created);
        reader.ReadArrayHeader();
        var handle = reader.ReadInt32();
        var total = 0;
        for (var round = 0; round < ProbeRounds; round++)
        {
            total += round;
            var reply = GuestRequests.ReadReply(sandbox.Call(GuestRequests.InvokeMethod(handle, null, nameof(ImageWarmupProbe.Counter.Add), [round], ResultMode.Value, _ => null)));
            if (GuestRequests.Deserialize<int>(reply) != total)
            {
                throw new IsolatedException("The sandbox returned a wrong answer while its image was being built.");
            }
            Expect(sandbox, ImageWarmupProbe.CallingHost(round), round + 1);
        }
        GuestRequests.ReadReply(sandbox.Call(GuestRequests.ReleaseObjects([handle])));
    }

    /// <summary>Answers the probe's host callback (<c>[true, argument + 1]</c>); null for any other request.</summary>
    private static byte[]? AnswerProbeCallback(ReadOnlySpan<byte> request)
    {
        var reader = new MessagePack.MessagePackReader(request.ToArray());
        if (reader.ReadArrayHeader() != 3 || (HostRequestKind)reader.ReadInt32() != HostRequestKind.InvokeCallback
            || reader.ReadString() != ImageWarmupProbe.Callback || reader.ReadArrayHeader() != 1)
        {
            return null;
        }
        return Callbacks.CallbackRegistry.Success(MessagePack.MessagePackSerializer.Serialize(reader.ReadInt32() + 1));
    }

    private static void Expect(Sandbox sandbox, Func<int> probe, int expected, bool resendDescriptor = false)
    {
        if (Run<int>(sandbox, probe, resendDescriptor) != expected)
        {
            throw new IsolatedException("The sandbox returned a wrong answer while its image was being built.");
        }
    }

    private static T? Run<T>(Sandbox sandbox, Delegate probe, bool resendDescriptor = false)
    {
        var request = GuestRequests.InvokeDelegate(probe, resendDescriptor ? new HashSet<ulong>() : sandbox.KnownMethodKeys, out var key);
        var result = GuestRequests.Deserialize<T>(GuestRequests.ReadReply(sandbox.Call(request)));
        sandbox.KnownMethodKeys.Add(key);
        return result;
    }

    /// <summary>The wall clock during a build: always the same instant, so builds are reproducible.</summary>
    private sealed class BuildClock : TimeProvider
    {
        public static BuildClock Instance { get; } = new();

        public override DateTimeOffset GetUtcNow() => new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
    }

}

using System.Buffers;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using MessagePack;
using MessagePack.Resolvers;

namespace IsolateGrains.Benchmarks;

/// <summary>
/// <c>--guest-costs</c>: what the pieces of a call's guest-side work cost inside a sandbox, timed by the guest
/// itself (the interpreter makes some operations far dearer than on the host, which is what this shows).
/// </summary>
public static class GuestCosts
{
    /// <summary>Runs the mode: each piece is timed in the sandbox and, for comparison, on the host.</summary>
    public static int Run()
    {
        using var host = new IsolatedRuntimeHost(new IsolatedRuntimeHostOptions { Output = o => Console.WriteLine(o.Text) }).WithBinDirectoryAssemblyLoader();
        using var runtime = new IsolatedRuntime(host);
        runtime.RegisterCallback("echo", (int value) => value + 1);
        runtime.Invoke(() => Measure(100));
        var guest = runtime.Invoke(() => Measure(20_000));
        if (Environment.GetEnvironmentVariable("GUEST_COSTS_CALLBACKS") is { } rounds)
        {
            // For a profiler: callbacks only, for a while.
            runtime.Invoke(() => Callbacks(int.Parse(rounds)));
        }
        if (Environment.GetEnvironmentVariable("GUEST_COSTS_CREATES") is { } creates)
        {
            // For a profiler: new sandboxes and their first calls only, for a while.
            var y = 41;
            Func<int> first = () => y + 1;
            host.PrepareAsync(first).GetAwaiter().GetResult();
            for (var i = int.Parse(creates); i > 0; i--)
            {
                using var fresh = new IsolatedRuntime(host);
                fresh.Invoke(first);
            }
        }
        if (Environment.GetEnvironmentVariable("GUEST_COSTS_INVOKES") is { } invokes)
        {
            // For a profiler: trivial invocations only, for a while.
            var x = 41;
            for (var i = int.Parse(invokes); i > 0; i--)
            {
                runtime.Invoke(() => x + 1);
            }
        }
        var local = Measure(200_000);
        // The floor of any call: entering the guest with the smallest request there is (releasing no objects).
        var refused = new byte[] { 0x92, 0x08, 0x90 }; // [ReleaseObjects, []]
        var sandbox = runtime.SandboxForTests;
        for (var i = 0; i < 5000; i++)
        {
            sandbox.Call(refused);
        }
        var floorStart = Benchmarks.Measure.ThreadCpuMicroseconds();
        for (var i = 0; i < 50_000; i++)
        {
            sandbox.Call(refused);
        }
        Console.WriteLine($"entering the guest with an empty request: {(Benchmarks.Measure.ThreadCpuMicroseconds() - floorStart) / 50_000:0.00} µs thread CPU per call");
        runtime.Invoke(() => TimeDispatcher(50_000));
        Console.WriteLine("| Piece | In the sandbox | On the host |");
        Console.WriteLine("|---|---:|---:|");
        foreach (var (name, value) in guest)
        {
            Console.WriteLine($"| {name} | {value:0.000} µs | {local.GetValueOrDefault(name):0.000} µs |");
        }
        return 0;
    }

    /// <summary>The shape of the guest dispatcher's entry point.</summary>
    public unsafe delegate void DispatchFunction(byte* mailbox);

    /// <summary>A closure-like class with one captured int.</summary>
    public sealed class Closure
    {
        /// <summary>The captured value.</summary>
        public int x;

        /// <summary>A method to call by reflection.</summary>
        public int Twice(int value) => value * 2;
    }

    /// <summary>
    /// Times the guest dispatcher on the smallest request, called directly with a mailbox of its own, and writes the
    /// result to the guest's output. Run it as an action: the dispatcher shares its reply buffer, so the reply of the
    /// call that runs this is the last timed request's (an empty success), which an action's caller accepts.
    /// </summary>
    public static void TimeDispatcher(int iterations)
    {
        var dispatch = typeof(DotNetIsolatorHost).Assembly.GetType("IsolateGrains.Guest.GuestDispatcher")!
            .GetMethod("Dispatch", BindingFlags.Public | BindingFlags.Static)!.CreateDelegate<DispatchFunction>();
        unsafe
        {
            var mailbox = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(32);
            var smallest = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc(8);
            smallest[0] = 0x92; // [ReleaseObjects, []]
            smallest[1] = 0x08;
            smallest[2] = 0x90;
            *(nint*)mailbox = (nint)smallest;
            *(int*)(mailbox + 4) = 3;
            for (var i = 0; i < 1000; i++)
            {
                dispatch(mailbox);
            }
            var started = Stopwatch.GetTimestamp();
            for (var i = 0; i < iterations; i++)
            {
                dispatch(mailbox);
            }
            Console.WriteLine($"the guest dispatcher's share of it: {Stopwatch.GetElapsedTime(started).TotalMicroseconds / iterations:0.00} µs");
        }
    }

    /// <summary>Calls the host's "echo" callback <paramref name="count"/> times.</summary>
    public static int Callbacks(int count)
    {
        var total = 0;
        for (var i = 0; i < count; i++)
        {
            total += DotNetIsolatorHost.Invoke<int>("echo", i);
        }
        return total;
    }

    private static readonly Dictionary<(Type, string, int), int> s_methodKeys = new() { [(typeof(Closure), "Twice", 1)] = 1 };

    /// <summary>Times each piece over <paramref name="iterations"/> runs; microseconds per run.</summary>
    public static Dictionary<string, double> Measure(int iterations)
    {
        var options = MessagePackSerializerOptions.Standard.WithResolver(ContractlessStandardResolverAllowPrivate.Instance).WithSecurity(MessagePackSecurity.UntrustedData);
        var encodedInt = MessagePackSerializer.Serialize(41, options);
        var field = typeof(Closure).GetField("x")!;
        var closure = new Closure();
        var output = new ArrayBufferWriter<byte>(256);
        var types = new Dictionary<Type, int> { [typeof(Closure)] = 1 };
        var concurrent = new System.Collections.Concurrent.ConcurrentDictionary<Type, int>();
        concurrent[typeof(Closure)] = 1;
        var keys = new Dictionary<ulong, int> { [0x1234_5678_9abc_def0UL] = 1 };
        var request = new byte[200];
        Func<Closure, int> lambda = c => c.x + 1;
        var results = new Dictionary<string, double>();

        void Time(string name, Action body)
        {
            body();
            var started = Stopwatch.GetTimestamp();
            for (var i = 0; i < iterations; i++)
            {
                body();
            }
            results[name] = Stopwatch.GetElapsedTime(started).TotalMicroseconds / iterations;
        }

        Time("empty loop body", () => { });
        Time("GetUninitializedObject", () => RuntimeHelpers.GetUninitializedObject(typeof(Closure)));
        Time("new Closure()", () => _ = new Closure());
        Time("FieldInfo.SetValue(int)", () => field.SetValue(closure, 41));
        Time("FieldInfo.GetValue(int)", () => field.GetValue(closure));
        Time("Deserialize(Type, reader)", () =>
        {
            var reader = new MessagePackReader(encodedInt);
            MessagePackSerializer.Deserialize(typeof(int), ref reader, options);
        });
        Time("Deserialize<int>(reader)", () =>
        {
            var reader = new MessagePackReader(encodedInt);
            MessagePackSerializer.Deserialize<int>(ref reader, options);
        });
        Time("formatter.Deserialize (cached)", () =>
        {
            var reader = new MessagePackReader(encodedInt);
            options.Resolver.GetFormatterWithVerify<int>().Deserialize(ref reader, options);
        });
        Time("Resolver.GetFormatterDynamic(Type)", () => options.Resolver.GetFormatterDynamic(typeof(int)));
        Time("reader.ReadInt32", () =>
        {
            var reader = new MessagePackReader(encodedInt);
            reader.ReadInt32();
        });
        Time("Serialize<int>(writer) + Flush", () =>
        {
            output.ResetWrittenCount();
            var writer = new MessagePackWriter(output);
            MessagePackSerializer.Serialize(ref writer, 42, options);
            writer.Flush();
        });
        var requestMemory = new ReadOnlyMemory<byte>(request, 0, 16);
        Time("new MessagePackReader(ReadOnlyMemory)", () => _ = new MessagePackReader(requestMemory));
        Time("new MessagePackWriter(output) + Flush", () =>
        {
            output.ResetWrittenCount();
            var writer = new MessagePackWriter(output);
            writer.Flush();
        });
        Time("Replies.WriteEmptySuccess", () =>
        {
            output.ResetWrittenCount();
            IsolateGrains.Protocol.Replies.WriteEmptySuccess(output);
        });
        Time("span.CopyTo 16 B", () => requestMemory.Span.CopyTo(request.AsSpan(100)));
        Time("Unsafe.CopyBlockUnaligned 16 B", () =>
        {
            unsafe
            {
                fixed (byte* from = request)
                {
                    Unsafe.CopyBlockUnaligned(from + 100, from, 16);
                }
            }
        });
        Time("try/catch/finally, empty", () =>
        {
            try
            {
                _ = iterations;
            }
            catch (Exception)
            {
                _ = iterations;
            }
            finally
            {
                _ = iterations;
            }
        });
        Time("Dictionary<Type,int> lookup", () => types.TryGetValue(typeof(Closure), out _));
        Time("ConcurrentDictionary<Type,int> lookup", () => concurrent.TryGetValue(typeof(Closure), out _));
        Time("Dictionary<ulong,int> lookup", () => keys.TryGetValue(0x1234_5678_9abc_def0UL, out _));
        Time("byte[200].ToArray()", () => request.AsSpan().ToArray());
        Time("typed delegate call", () => lambda(closure));
        var twice = typeof(Closure).GetMethod(nameof(Closure.Twice))!;
        object?[] twiceArguments = [21];
        Time("MethodInfo.Invoke(Twice, [21])", () => twice.Invoke(closure, BindingFlags.DoNotWrapExceptions, null, twiceArguments, null));
        Time("(type, name, count) tuple dictionary lookup", () => s_methodKeys.TryGetValue((typeof(Closure), "Twice", 1), out _));
        try
        {
            var dynamicSetter = new System.Reflection.Emit.DynamicMethod("set_x", null, [typeof(object), typeof(int)], typeof(Closure).Module, skipVisibility: true);
            var il = dynamicSetter.GetILGenerator();
            il.Emit(System.Reflection.Emit.OpCodes.Ldarg_0);
            il.Emit(System.Reflection.Emit.OpCodes.Castclass, typeof(Closure));
            il.Emit(System.Reflection.Emit.OpCodes.Ldarg_1);
            il.Emit(System.Reflection.Emit.OpCodes.Stfld, field);
            il.Emit(System.Reflection.Emit.OpCodes.Ret);
            var setter = dynamicSetter.CreateDelegate<Action<object, int>>();
            Time("DynamicMethod setter", () => setter(closure, 41));
        }
        catch (Exception e)
        {
            Console.WriteLine("DynamicMethod: " + e.GetType().Name + ": " + e.Message);
        }
        if (DotNetIsolatorHost.IsInSandbox)
        {
            Time("DotNetIsolatorHost.Invoke<int>(\"echo\", 41)", () => DotNetIsolatorHost.Invoke<int>("echo", 41));
        }
        Time("Stopwatch.GetTimestamp", () => Stopwatch.GetTimestamp());
        return results;
    }
}

using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace IsolateGrains.Tests;

/// <summary>Guest code calls the host through registered callbacks.</summary>
public sealed class HostCallbackTests : IDisposable
{
    private readonly IsolatedRuntime _runtime = new(TestHosts.Shared);

    [Fact]
    public void CallbacksOfZeroToFourParametersWithAndWithoutResultsAreCalled()
    {
        var calls = new ConcurrentQueue<string>();
        _runtime
            .RegisterCallback("ping", () => calls.Enqueue("ping"))
            .RegisterCallback("note", (string text) => calls.Enqueue("note:" + text))
            .RegisterCallback("answer", () => 42)
            .RegisterCallback("twice", (int x) => x * 2)
            .RegisterCallback("join", (string a, string b) => a + b)
            .RegisterCallback("sum3", (int a, int b, int c) => a + b + c)
            .RegisterCallback("sum4", (int a, int b, int c, int d) => a + b + c + d)
            .RegisterCallback("person", (string name) => new Person(name, name.Length));

        var result = _runtime.Invoke(() =>
        {
            DotNetIsolatorHost.Invoke("ping");
            DotNetIsolatorHost.Invoke("note", "hi");
            var person = DotNetIsolatorHost.Invoke<Person>("person", "ada");
            return $"{DotNetIsolatorHost.Invoke<int>("answer")} {DotNetIsolatorHost.Invoke<int>("twice", 21)} " +
                   $"{DotNetIsolatorHost.Invoke<string>("join", "a", "b")} {DotNetIsolatorHost.Invoke<int>("sum3", 1, 2, 3)} " +
                   $"{DotNetIsolatorHost.Invoke<int>("sum4", 1, 2, 3, 4)} {person.Name}/{person.Age}";
        });

        Assert.Equal("42 42 ab 6 10 ada/3", result);
        Assert.Equal(["ping", "note:hi"], calls);
    }

    [Fact]
    public void RawCallbacksPassBytesThrough()
    {
        _runtime.RegisterCallback("reverse", (byte[] data) => data.Reverse().ToArray());

        var result = _runtime.Invoke(() => DotNetIsolatorHost.InvokeRaw("reverse", [1, 2, 3]));

        Assert.Equal([3, 2, 1], result);
    }

    [Fact]
    public void PrimitiveArgumentsOfEverySizeAndSignArriveIntact()
    {
        // The guest writes primitive arguments itself (not through MessagePackWriter): every encoding width must round-trip.
        _runtime.RegisterCallback("describe", (int i, long l, double d, bool b) => $"{i}|{l}|{d:R}|{b}");
        _runtime.RegisterCallback("text", (string? s) => DescribeText(s));
        _runtime.RegisterCallback("bytes", (byte[] data) => data.Length + ":" + data.Sum(x => x));
        int[] ints = [0, 1, 127, 128, 255, 256, 65535, 65536, -1, -32, -33, -128, -129, -32768, -32769, int.MaxValue, int.MinValue];
        long[] longs = [0, -1, int.MaxValue + 1L, int.MinValue - 1L, long.MaxValue, long.MinValue];
        string?[] texts = [null, "", "a", new string('x', 31), new string('y', 32), new string('z', 255), new string('w', 256), new string('v', 65535), new string('u', 65536), "héllo wörld ✓ 𝄞"];
        int[] sizes = [0, 1, 255, 256, 65535, 65536];

        var described = _runtime.Invoke(() => DescribeInGuest(ints, longs));
        var measured = _runtime.Invoke(() => MeasureInGuest(texts));
        var summed = _runtime.Invoke(() => SumInGuest(sizes));

        Assert.Equal(ints.Select((i, n) => $"{i}|{longs[n % longs.Length]}|{n * -1.5e-300:R}|{n % 2 == 0}"), described);
        Assert.Equal(texts.Select(DescribeText), measured);
        Assert.Equal(sizes.Select(n => n + ":" + Enumerable.Range(0, n).Sum(k => (byte)k)), summed);
    }

    private static string DescribeText(string? text) => text is null ? "null" : $"{text.Length}:{text.Sum(c => (long)c)}:{text}";

    [Fact]
    public void PrimitiveResultsOfEverySizeAndSignArriveIntact()
    {
        // The guest reads int, long, bool and string results itself (not through the serializer): every width must round-trip.
        long[] numbers = [0, 1, 127, 128, 255, 256, 65535, 65536, uint.MaxValue, -1, -32, -33, -128, -129, -32768, -32769, int.MinValue, int.MaxValue, long.MinValue, long.MaxValue];
        string?[] texts = [null, "", "a", new string('x', 31), new string('y', 32), new string('z', 255), new string('w', 256), new string('v', 65535), new string('u', 65536), "héllo wörld ✓ 𝄞"];
        _runtime.RegisterCallback("number", (int index) => numbers[index]);
        _runtime.RegisterCallback("int", (int index) => (int)Math.Clamp(numbers[index], int.MinValue, int.MaxValue));
        _runtime.RegisterCallback("flag", (int index) => index % 2 == 0);
        _runtime.RegisterCallback("text", (int index) => texts[index]);

        var longs = _runtime.Invoke(() => Enumerate<long>(numbers.Length, "number"));
        var ints = _runtime.Invoke(() => Enumerate<int>(numbers.Length, "int"));
        var flags = _runtime.Invoke(() => Enumerate<bool>(4, "flag"));
        var strings = _runtime.Invoke(() => Enumerate<string?>(texts.Length, "text"));

        Assert.Equal(numbers, longs);
        Assert.Equal(numbers.Select(n => (int)Math.Clamp(n, int.MinValue, int.MaxValue)), ints);
        Assert.Equal([true, false, true, false], flags);
        Assert.Equal(texts, strings);
    }

    /// <summary>Calls <paramref name="callback"/> with 0..count-1 and collects its results (runs in the sandbox).</summary>
    private static T[] Enumerate<T>(int count, string callback)
    {
        var results = new T[count];
        for (var i = 0; i < count; i++)
        {
            results[i] = DotNetIsolatorHost.Invoke<T>(callback, i);
        }
        return results;
    }

    [Fact]
    public void IntegersReachObjectParametersAsTheSerializerWritesThem()
    {
        // The guest encodes primitive arguments itself; a callback taking object must see the types MessagePack's own
        // writer would give (200 arrives as a byte, as it always has), and arrays that merely pass "is byte[]" are
        // not sent as binary.
        long[] values = [0, 127, 128, 200, 255, 256, 65535, 65536, uint.MaxValue, uint.MaxValue + 1L, -1, -32, -33, -128, -129, -32768, -32769, int.MinValue, int.MinValue - 1L];
        _runtime.RegisterCallback("type", (object? value) => value is null ? "null" : $"{value.GetType().Name}:{value}");
        _runtime.RegisterCallback("signed", (sbyte[] values) => string.Join(",", values));
        _runtime.RegisterCallback("shades", (Shade[] shades) => string.Join(",", shades));

        var seen = _runtime.Invoke(() => TypesInGuest(values));
        var signed = _runtime.Invoke(() => DotNetIsolatorHost.Invoke<string>("signed", new sbyte[] { 1, -1, -128 }));
        var shades = _runtime.Invoke(() => DotNetIsolatorHost.Invoke<string>("shades", new[] { Shade.Light, Shade.Dark }));

        var expected = values.Concat(values.Where(v => v is >= int.MinValue and <= int.MaxValue)).Select(v =>
        {
            var viaWriter = MessagePack.MessagePackSerializer.Deserialize<object>(MessagePack.MessagePackSerializer.Serialize(v), IsolateGrains.Protocol.IsolatedSerializer.Options)!;
            return $"{viaWriter.GetType().Name}:{viaWriter}";
        });
        Assert.Equal(expected, seen);
        Assert.Equal("1,-1,-128", signed);
        Assert.Equal("Light,Dark", shades);
    }

    /// <summary>An enum one byte wide: an array of it passes "is byte[]".</summary>
    public enum Shade : byte
    {
        /// <summary>Light.</summary>
        Light = 1,

        /// <summary>Dark.</summary>
        Dark = 200,
    }

    private static string[] TypesInGuest(long[] values) =>
        values.Select(v => DotNetIsolatorHost.Invoke<string>("type", v)).Concat(values.Where(v => v is >= int.MinValue and <= int.MaxValue).Select(v => DotNetIsolatorHost.Invoke<string>("type", (int)v))).ToArray();

    // Run in the sandbox (a lambda sent there cannot hold nested lambdas, so the loops live here).
    private static string[] DescribeInGuest(int[] ints, long[] longs) =>
        ints.Select((i, n) => DotNetIsolatorHost.Invoke<string>("describe", i, longs[n % longs.Length], n * -1.5e-300, n % 2 == 0)).ToArray();

    private static string[] MeasureInGuest(string?[] texts) => texts.Select(s => DotNetIsolatorHost.Invoke<string>("text", s)).ToArray();

    private static string[] SumInGuest(int[] sizes) =>
        sizes.Select(n => DotNetIsolatorHost.Invoke<string>("bytes", Enumerable.Range(0, n).Select(k => (byte)k).ToArray())).ToArray();

    [Fact]
    public void AnArgumentWhoseSerializationCallsTheHostDoesNotGarbleTheCallItIsAnArgumentOf()
    {
        // Serializing the argument reads Reading.Length, which calls the host while the outer call is being written.
        _runtime.RegisterCallback("inner", (string text) => text.Length);
        _runtime.RegisterCallback("outer", (string label, Reading reading) => $"{label}:{reading.Length}");

        var result = _runtime.Invoke(() => DotNetIsolatorHost.Invoke<string>("outer", "seven", new Reading("seven!!")));

        Assert.Equal("seven:7", result);
    }

    /// <summary>A value whose serialization (its <see cref="Length"/> getter) calls the host inside a sandbox.</summary>
    public sealed class Reading
    {
        /// <summary>For the deserializer.</summary>
        public Reading()
        {
        }

        /// <summary>A reading of <paramref name="text"/>.</summary>
        public Reading(string text) => Text = text;

        /// <summary>The text.</summary>
        public string Text { get; set; } = "";

        /// <summary>In a sandbox, the text's length as the host measures it; elsewhere the length that was sent.</summary>
        public int Length
        {
            get => DotNetIsolatorHost.IsInSandbox ? DotNetIsolatorHost.Invoke<int>("inner", Text) : Sent;
            set => Sent = value;
        }

        [MessagePack.IgnoreMember] // only Length goes on the wire
        private int Sent { get; set; }
    }

    [Fact]
    public void AnUnknownCallbackNameGivesAGuestExceptionNamingIt()
    {
        var message = _runtime.Invoke(() =>
        {
            try
            {
                DotNetIsolatorHost.Invoke("nobody-home");
                return "no error";
            }
            catch (HostCallbackException e)
            {
                return e.Message;
            }
        });

        Assert.Contains("nobody-home", message);
        Assert.Contains("No host callback", message);
    }

    [Fact]
    public void AHostExceptionIsLoggedButItsMessageNeverReachesTheGuest()
    {
        var logged = new ConcurrentQueue<string>();
        using var host = TestHosts.Create(loggerFactory: LoggerFactory.Create(b => b.AddProvider(new ListLoggerProvider(logged)))).WithBinDirectoryAssemblyLoader();
        using var runtime = new IsolatedRuntime(host);
        runtime.RegisterCallback("secret", () => throw new InvalidOperationException("password=hunter2"));

        var error = Assert.Throws<IsolatedException>(() => runtime.Invoke(() => DotNetIsolatorHost.Invoke("secret")));

        Assert.Equal(typeof(HostCallbackException).FullName, error.GuestExceptionType);
        Assert.Contains("secret", error.Message);
        Assert.DoesNotContain("hunter2", error.ToString());
        Assert.Contains(logged, line => line.Contains("hunter2"));
    }

    [Fact]
    public void ASynchronousCallbackCallingBackIntoItsOwnSandboxGetsAClearErrorAndNothingHangs()
    {
        var runtime = _runtime;
        string? seenByCallback = null;
        runtime.RegisterCallback("reenter", () =>
        {
            try
            {
                runtime.Invoke(() => 1);
            }
            catch (IsolatedException e)
            {
                seenByCallback = e.Message;
                throw;
            }
        });

        var error = Assert.Throws<IsolatedException>(() => runtime.Invoke(() => DotNetIsolatorHost.Invoke("reenter")));

        Assert.Equal(typeof(HostCallbackException).FullName, error.GuestExceptionType);
        Assert.Contains("Synchronous re-entry is not supported", seenByCallback);
        Assert.Equal(2, runtime.Invoke(() => 1 + 1));
    }

    [Fact]
    public void WrongArgumentCountsAreReported()
    {
        _runtime.RegisterCallback("one", (int x) => x);

        var error = Assert.Throws<IsolatedException>(() => _runtime.Invoke(() => DotNetIsolatorHost.Invoke<int>("one", 1, 2)));

        Assert.Contains("takes 1 argument(s); the guest passed 2", error.Message);
    }

    [Fact]
    public void OutsideASandboxTheGuestApiSaysWhereItWorks()
    {
        var error = Assert.Throws<InvalidOperationException>(() => DotNetIsolatorHost.Invoke("x"));

        Assert.Contains("only inside an IsolateGrains sandbox", error.Message);
    }

    public void Dispose() => _runtime.Dispose();

    public sealed record Person(string Name, int Age);

    private sealed class ListLoggerProvider(ConcurrentQueue<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ListLogger(lines);

        public void Dispose()
        {
        }

        private sealed class ListLogger(ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Enqueue(formatter(state, exception) + " " + exception);
        }
    }
}

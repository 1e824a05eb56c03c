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

namespace IsolateGrains.Grains.Tests;

/// <summary>Lambdas, objects and errors through isolate grains, on a three-silo cluster.</summary>
[Collection(ClusterCollection.Name)]
public sealed class IsolateGrainTests(ClusterFixture fixture)
{
    private IIsolateGrain Grain(string id) => fixture.Client.GetGrain<IIsolateGrain>(id + "-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task ALambdaWithCapturedValuesRunsInTheGrainsSandbox()
    {
        var grain = Grain("lambda");
        var people = new[] { new Person("Ann", 5), new Person("Bob", 7) };

        var total = await grain.Invoke(() => people.Sum(p => p.Age));
        var architecture = await grain.Invoke(() => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture);
        await grain.Invoke(() => { State.Counter = 41; });
        var counter = await grain.Invoke(() => ++State.Counter);

        Assert.Equal(12, total);
        Assert.Equal(System.Runtime.InteropServices.Architecture.Wasm, architecture);
        Assert.Equal(42, counter);
        Assert.Equal(0, State.Counter);
    }

    [Fact]
    public async Task AsyncLambdasAreAwaitedByTheGrain()
    {
        var grain = Grain("async");

        var result = await grain.InvokeAsync(async () =>
        {
            await Task.Delay(10);
            await Task.Yield();
            return 7;
        });

        Assert.Equal(7, result);
    }

    [Fact]
    public async Task GuestExceptionsArriveWithTheirTypeAndGuestStack()
    {
        var grain = Grain("errors");

        var error = await Assert.ThrowsAsync<IsolatedException>(() => grain.Invoke(() => Thrower.Fail("nope")));

        Assert.Equal(typeof(InvalidOperationException).FullName, error.GuestExceptionType);
        Assert.Equal("nope", error.Message);
        Assert.Contains(nameof(Thrower.Fail), error.GuestStackTrace);
    }

    public static TheoryData<string, byte[], string> MalformedRequests() => new()
    {
        { "not an array", [0x2a], "not a MessagePack array" },
        { "an invocation cut off after its key", [0x94, 0x01, 0x05], "truncated" },
        { "an unknown kind", [0x91, 0x63], "Unknown request kind 99" },
    };

    [Theory]
    [MemberData(nameof(MalformedRequests))]
    public async Task AMalformedRequestIsRefusedByNameAndTheGrainKeepsItsState(string what, byte[] payload, string expected)
    {
        // Grain requests are bytes from callers: whatever they are, the reply is a refusal that names the problem.
        var grain = Grain("malformed");
        await grain.Invoke(() => { State.Counter = 5; });

        var reply = await grain.Execute(new IsolateRequest(payload));

        var decoded = MessagePack.MessagePackSerializer.Deserialize<object[]>(reply.Payload);
        Assert.Equal(2, Convert.ToInt32(decoded[0], System.Globalization.CultureInfo.InvariantCulture)); // BadRequest, not a guest exception
        Assert.Contains(expected, (string)decoded[1], StringComparison.Ordinal);
        Assert.Equal(6, await grain.Invoke(() => ++State.Counter));
        Assert.Equal(0, (await grain.GetStatus()).ResetCount);
        Assert.False(string.IsNullOrEmpty(what));
    }

    [Fact]
    public async Task ARequestOverTheMaximumPayloadIsRefusedAndTheGrainKeepsItsState()
    {
        var grain = Grain("oversized");
        await grain.Invoke(() => { State.Counter = 5; });

        var reply = await grain.Execute(new IsolateRequest(new byte[17 * 1024 * 1024]));

        var decoded = MessagePack.MessagePackSerializer.Deserialize<object[]>(reply.Payload);
        Assert.Equal(2, Convert.ToInt32(decoded[0], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("maximum payload", (string)decoded[1], StringComparison.Ordinal);
        Assert.Equal(6, await grain.Invoke(() => ++State.Counter));
    }

    [Fact]
    public async Task IsolatedObjectsLiveInTheGrainsSandbox()
    {
        var grain = Grain("objects");

        var counter = await grain.CreateObject<Counter>(10);
        await counter.InvokeVoid("Add", 5);
        var value = await counter.Invoke<int>("Get");
        var named = await grain.CreateObject(typeof(Counter).Assembly.GetName().Name!, typeof(Counter).Namespace, "IsolateGrainTests+Counter", 1);
        var missingType = await Assert.ThrowsAsync<IsolatedException>(() => grain.CreateObject(typeof(Counter).Assembly.GetName().Name!, "Nowhere", "Nothing"));
        var missingMethod = await Assert.ThrowsAsync<IsolatedException>(() => counter.Invoke<int>("Nothing"));

        Assert.Equal(15, value);
        Assert.Equal(1, await named.Invoke<int>("Get"));
        Assert.Contains("Type 'Nowhere.Nothing' was not found", missingType.Message);
        Assert.Contains("Method 'Nothing' was not found", missingMethod.Message);
    }

    [Fact]
    public async Task ManyGrainsSpreadOverTheSilosEachWithItsOwnSandbox()
    {
        var grains = Enumerable.Range(0, 30).Select(i => Grain("many" + i)).ToList();

        await Task.WhenAll(grains.Select((g, i) => g.Invoke(() => { State.Counter = i * 3; })));
        var values = await Task.WhenAll(grains.Select(g => g.Invoke(() => State.Counter)));
        var silos = await Task.WhenAll(grains.Select(g => g.GetStatus()));

        Assert.Equal(Enumerable.Range(0, 30).Select(i => i * 3), values);
        Assert.True(silos.Select(s => s.Silo).Distinct().Count() >= 2, string.Join(", ", silos.Select(s => s.Silo)));
    }

    [Fact]
    public async Task ATrapInOneGrainLeavesItUsableAndOtherGrainsUntouched()
    {
        var doomed = Grain("doomed");
        var healthy = Grain("healthy");
        await doomed.Invoke(() => { State.Counter = 5; });
        await healthy.Invoke(() => { State.Counter = 9; });

        var error = await Assert.ThrowsAsync<IsolatedException>(() => doomed.Invoke(() => Environment.FailFast("gone")));

        Assert.Contains("restored its last saved snapshot", error.Message);
        Assert.Equal(5, await doomed.Invoke(() => State.Counter));
        Assert.Equal(9, await healthy.Invoke(() => State.Counter));
    }

    public sealed record Person(string Name, int Age);

    public sealed class Counter
    {
        private int _value;

        public Counter(int start) => _value = start;

        public void Add(int amount) => _value += amount;

        public int Get() => _value;
    }

    private static class State
    {
        public static int Counter;
    }

    private static class Thrower
    {
        public static int Fail(string message) => throw new InvalidOperationException(message);
    }
}

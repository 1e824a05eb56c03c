using Orleans;

namespace IsolateGrains.Grains.Tests;

/// <summary>Guest callbacks bound to client observers and to grains, including calls back into the same isolate grain.</summary>
[Collection(ClusterCollection.Name)]
public sealed class CallbackTests(ClusterFixture fixture)
{
    private IIsolateGrain Grain(string id) => fixture.Client.GetGrain<IIsolateGrain>(id + "-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task AGuestCallsAClientObserverWhileTheClientsCallIsInFlight()
    {
        var grain = Grain("observer");
        var handler = new IsolateCallbackHandler().Register("greet", (string name) => $"hello {name}");
        var observer = fixture.Client.CreateObjectReference<IIsolateCallback>(handler);
        await grain.BindCallback("greet", observer);

        var greeting = await grain.InvokeAsync(() => DotNetIsolatorHost.InvokeAsync<string>("greet", "ada"));

        Assert.Equal("hello ada", greeting);
    }

    [Fact]
    public async Task AGuestCallsAGrainThatCallsBackIntoTheSameIsolateGrainWithoutDeadlock()
    {
        var grain = Grain("reentrant");
        var key = grain.GetPrimaryKeyString();
        var callbackGrain = fixture.Client.GetGrain<IIsolateCallbackGrain>(key);
        await grain.BindCallbackGrain("lookup", callbackGrain);
        await grain.Invoke(() => { Shared.Value = 30; });

        var result = await grain.InvokeAsync(async () => await DotNetIsolatorHost.InvokeAsync<int>("lookup", 12) + 0);

        Assert.Equal(42, result);
    }

    [Fact]
    public async Task SynchronousGuestCallsToGrainBoundCallbacksAreRefusedClearly()
    {
        var grain = Grain("sync");
        await grain.BindCallbackGrain("lookup", fixture.Client.GetGrain<IIsolateCallbackGrain>(grain.GetPrimaryKeyString()));

        var error = await Assert.ThrowsAsync<IsolatedException>(() => grain.Invoke(() => DotNetIsolatorHost.Invoke<int>("lookup", 1)));

        Assert.Contains("InvokeAsync", error.Message);
    }

    /// <summary>Read by the callback grain through the isolate grain it serves.</summary>
    public static class Shared
    {
        public static int Value;
    }
}

/// <summary>A callback grain that answers by calling back into the isolate grain with the same key.</summary>
public sealed class LookupCallbackGrain : Grain, IIsolateCallbackGrain
{
    public async Task<IsolateCallbackReply> Invoke(IsolateCallbackRequest request)
    {
        var isolate = GrainFactory.GetGrain<IIsolateGrain>(this.GetPrimaryKeyString());
        var offset = MessagePack.MessagePackSerializer.Deserialize<int>(request.Arguments[0]);
        var shared = await isolate.Invoke(() => CallbackTests.Shared.Value);
        return new IsolateCallbackReply(MessagePack.MessagePackSerializer.Serialize(shared + offset), null);
    }
}

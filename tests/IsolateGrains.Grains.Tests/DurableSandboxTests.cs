using Orleans.Runtime;

namespace IsolateGrains.Grains.Tests;

/// <summary>Sandboxes survive deactivation and migration; forks diverge.</summary>
[Collection(ClusterCollection.Name)]
public sealed class DurableSandboxTests(ClusterFixture fixture)
{
    private IIsolateGrain Grain(string id) => fixture.Client.GetGrain<IIsolateGrain>(id + "-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task StaticsObjectsAndHandlesSurviveDeactivation()
    {
        var grain = Grain("durable");
        await grain.Invoke(() => { Statics.Counter = 3; });
        var book = await grain.CreateObject<PhoneBook>();
        await book.InvokeVoid("Add", "ada", "123");
        await book.InvokeVoid("Add", "bob", "456");

        await grain.Deactivate();
        await fixture.Cluster.WaitForDeactivationAsync(grain);

        var status = await grain.GetStatus();
        Assert.Equal("storage", status.RestoredFrom);
        Assert.Equal(4, await grain.Invoke(() => ++Statics.Counter));
        Assert.Equal("456", await book.Invoke<string>("Find", "bob"));
        Assert.Equal(2, await book.Invoke<int>("Count"));
        Assert.True(status.SnapshotBytes is > 0 and < 2_000_000, $"snapshot of {status.SnapshotBytes} bytes");
    }

    [Fact]
    public async Task AMigratedSandboxKeepsItsStateOnTheNewSilo()
    {
        var grain = Grain("migrating");
        await grain.Invoke(() => { Statics.Counter = 70; });
        var book = await grain.CreateObject<PhoneBook>();
        await book.InvokeVoid("Add", "eve", "789");
        var before = await grain.GetStatus();
        var target = fixture.Cluster.GetActiveSilos().Select(s => s.SiloAddress).First(s => s.ToString() != before.Silo);

        await fixture.Cluster.MigrateAsync(grain, target);
        var after = await WaitForSiloChange(grain, before.Silo);

        Assert.NotEqual(before.Silo, after.Silo);
        Assert.Equal("migration", after.RestoredFrom);
        Assert.Equal(71, await grain.Invoke(() => ++Statics.Counter));
        Assert.Equal("789", await book.Invoke<string>("Find", "eve"));
    }

    [Fact]
    public async Task AForkStartsAsACopyAndThenDivergesIndependently()
    {
        var parent = Grain("parent");
        var childKey = "child-" + Guid.NewGuid().ToString("N");
        var child = fixture.Client.GetGrain<IIsolateGrain>(childKey);
        await parent.Invoke(() => { Statics.Counter = 100; });

        await parent.Fork(childKey);
        await parent.Invoke(() => { Statics.Counter += 1; });
        await child.Invoke(() => { Statics.Counter += 50; });

        Assert.Equal(101, await parent.Invoke(() => Statics.Counter));
        Assert.Equal(150, await child.Invoke(() => Statics.Counter));
        Assert.Equal("fork", (await child.GetStatus()).RestoredFrom);
    }

    private static async Task<IsolateGrainStatus> WaitForSiloChange(IIsolateGrain grain, string previousSilo)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var status = await grain.GetStatus();
            if (status.Silo != previousSilo)
            {
                return status;
            }
            await Task.Delay(100);
        }
        return await grain.GetStatus();
    }

    public sealed class PhoneBook
    {
        private readonly Dictionary<string, string> _numbers = [];

        public void Add(string name, string number) => _numbers[name] = number;

        public string Find(string name) => _numbers[name];

        public int Count() => _numbers.Count;
    }

    private static class Statics
    {
        public static int Counter;
    }
}

using IsolateGrains.Protocol;

namespace IsolateGrains.Tests;

/// <summary>
/// Warm start: the host learns the lambdas its sandboxes run and prepares them in a template that new
/// sandboxes start from. A sandbox started from the template behaves exactly like one started from the
/// image (fresh statics, same results, same errors), only without redoing the first-call work. Each test
/// has its own host, so that what one host learned does not leak into another test.
/// </summary>
public sealed class WarmStartTests
{
    [Fact]
    public async Task LearnedLambdaIsPreparedAndNewSandboxesStartFromTheTemplate()
    {
        using var host = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        var offset = 40;
        Func<int> lambda = () => offset + 2;
        using (var first = new IsolatedRuntime(host))
        {
            Assert.Equal(42, first.Invoke(lambda));
        }

        await host.PrepareAsync();
        var template = host.WarmStart!.Current;
        Assert.NotNull(template);
        var key = GuestRequests.MethodToPrepare(lambda).Descriptor.Key;
        Assert.Contains(key, template.MethodKeys);

        using var second = new IsolatedRuntime(host);
        Assert.Same(template, second.SandboxForTests.Template);
        // The sandbox already knows the method: the host sends only its key.
        Assert.Contains(key, second.SandboxForTests.KnownMethodKeys);
        offset = 1;
        Assert.Equal(3, second.Invoke(lambda));
    }

    [Fact]
    public async Task SandboxesStartedFromTheTemplateDoNotSeeStateOfOtherSandboxes()
    {
        using var host = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        using (var first = new IsolatedRuntime(host))
        {
            Assert.Equal(1, first.Invoke(() => WarmStartState.Next()));
            Assert.Equal(2, first.Invoke(() => WarmStartState.Next()));
            first.Invoke(() => WarmStartState.Remember("secret of the first sandbox"));
        }
        await host.PrepareAsync();
        Assert.NotNull(host.WarmStart!.Current);

        using var second = new IsolatedRuntime(host);
        Assert.NotNull(second.SandboxForTests.Template);
        // The template only prepared these methods; it never ran them, so its statics are fresh.
        Assert.Equal(1, second.Invoke(() => WarmStartState.Next()));
        Assert.Null(second.Invoke(() => WarmStartState.Remembered));
    }

    [Fact]
    public async Task PrepareAsyncPreparesWithoutRunningAnything()
    {
        using var host = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        var calls = 0;
        Func<int> lambda = () => WarmStartState.Next() + calls;
        await host.PrepareAsync(lambda);

        var template = host.WarmStart!.Current;
        Assert.NotNull(template);
        Assert.Contains(GuestRequests.MethodToPrepare(lambda).Descriptor.Key, template.MethodKeys);
        using var runtime = new IsolatedRuntime(host);
        Assert.NotNull(runtime.SandboxForTests.Template);
        // Had the preparation run the lambda, the counter would already be past 1 here.
        Assert.Equal(1, runtime.Invoke(lambda));
    }

    [Fact]
    public async Task APreparedLambdasClosureIsReadyInTheTemplate()
    {
        // The first call in a new sandbox neither lays out nor compiles anything for a prepared closure: the template did.
        using var host = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        var offset = 2;
        Func<int> lambda = () => offset + 1;
        await host.PrepareAsync(lambda);
        using var runtime = new IsolatedRuntime(host);
        Assert.NotNull(runtime.SandboxForTests.Template);

        Assert.True(runtime.Invoke(ConstructorIsReady(lambda.Target!.GetType())));
        Assert.Equal(3, runtime.Invoke(lambda));
    }

    [Fact]
    public async Task ALambdaThatCapturesNothingIsReadyInTheTemplateToo()
    {
        // Its target is the compiler's <>c singleton class, which has a static constructor: the template compiles the
        // constructor call without running it.
        using var host = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        Func<int> lambda = () => 41;
        await host.PrepareAsync(lambda);
        using var runtime = new IsolatedRuntime(host);
        Assert.NotNull(runtime.SandboxForTests.Template);

        Assert.True(runtime.Invoke(ConstructorIsReady(lambda.Target!.GetType())));
        Assert.Equal(41, runtime.Invoke(lambda));
    }

    /// <summary>A lambda with a closure of its own (a lambda of the test method would share the prepared one's).</summary>
    private static Func<bool> ConstructorIsReady(Type closure)
    {
        var name = closure.AssemblyQualifiedName!;
        return () => ClosureSerializer.ReaderFor(Type.GetType(name, throwOnError: true)!).ConstructorIsReady;
    }

    [Fact]
    public async Task PreparingALambdaThatReturnsAUserStructRunsNoneOfTheStructsCode()
    {
        // The template rehearses a call's path without calling the lambda; writing a default user struct would
        // run its property getters, which count here.
        using var host = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        var offset = 0;
        Func<CountingReading> lambda = () => new CountingReading { Offset = offset };
        await host.PrepareAsync(lambda);

        using var runtime = new IsolatedRuntime(host);
        Assert.NotNull(runtime.SandboxForTests.Template);
        Assert.Equal(1, runtime.Invoke(lambda).Count);
    }

    [Fact]
    public async Task PreparingLambdasWhoseDefaultResultsWouldRunUserCodeRunsNone()
    {
        // A default (UserStruct, int) is written through the struct's getters; a class with its own formatter is
        // written (even when null) by that formatter: the rehearsal must write neither.
        using var host = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        var offset = 0;
        Func<(CountingReading, int)> pair = () => (new CountingReading { Offset = offset }, offset);
        Func<CountedByFormatter> formatted = () => new CountedByFormatter();
        await host.PrepareAsync(pair, formatted);

        using (var runtime = new IsolatedRuntime(host))
        {
            Assert.NotNull(runtime.SandboxForTests.Template);
            Assert.Equal(1, runtime.Invoke(pair).Item1.Count);
        }
        using (var runtime = new IsolatedRuntime(host))
        {
            Assert.Equal(1, runtime.Invoke(formatted).Count);
        }
    }

    [Fact]
    public async Task EachTemplateBuildsOnThePreviousOne()
    {
        using var host = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        var a = 2;
        Func<int> first = () => a * 10;
        Func<string> second = () => "b" + a;
        await host.PrepareAsync(first);
        var earlier = host.WarmStart!.Current;
        await host.PrepareAsync(second);
        var later = host.WarmStart.Current;

        Assert.NotNull(earlier);
        Assert.NotNull(later);
        Assert.NotSame(earlier, later);
        Assert.True(later.MethodKeys.IsSupersetOf(earlier.MethodKeys));
        Assert.Contains(GuestRequests.MethodToPrepare(second).Descriptor.Key, later.MethodKeys);
        using var runtime = new IsolatedRuntime(host);
        Assert.Same(later, runtime.SandboxForTests.Template);
        Assert.Equal(20, runtime.Invoke(first));
        Assert.Equal("b2", runtime.Invoke(second));
    }

    [Fact]
    public async Task UnusedCapturedFieldsOfHostOnlyTypesDoNotBreakPreparation()
    {
        // The closure also holds the host itself (a type no sandbox can load); the lambda never uses it,
        // so neither the call nor the preparation may touch that field's type.
        using var host = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        var value = 5;
        Func<int> lambda = () => value * 2;
        Action unused = () => GC.KeepAlive(host);
        await host.PrepareAsync(lambda);
        GC.KeepAlive(unused);

        using var runtime = new IsolatedRuntime(host);
        Assert.NotNull(runtime.SandboxForTests.Template);
        Assert.Equal(10, runtime.Invoke(lambda));
    }

    [Fact]
    public async Task MethodsThatCannotBePreparedStillReportTheirErrorOnTheFirstCall()
    {
        // No loader: the test assembly cannot be loaded into the sandbox, so the method cannot be prepared.
        using var host = TestHosts.Create();
        var value = 1;
        Func<int> lambda = () => value + 1;
        await host.PrepareAsync(lambda);
        Assert.DoesNotContain(GuestRequests.MethodToPrepare(lambda).Descriptor.Key, host.WarmStart!.Current?.MethodKeys ?? new HashSet<ulong>());

        using var runtime = new IsolatedRuntime(host);
        var error = Assert.Throws<IsolatedException>(() => runtime.Invoke(lambda));
        Assert.Contains("IsolateGrains.Tests", error.Message);
        Assert.False(error.IsFatal);
    }

    [Fact]
    public async Task SnapshotsOfSandboxesStartedFromTheTemplateRestore()
    {
        using var host = TestHosts.Create().WithBinDirectoryAssemblyLoader();
        await host.PrepareAsync(() => WarmStartState.Next(), () => WarmStartState.Remember(""));

        using var original = new IsolatedRuntime(host);
        Assert.NotNull(original.SandboxForTests.Template);
        Assert.Equal(1, original.Invoke(() => WarmStartState.Next()));
        original.Invoke(() => WarmStartState.Remember("kept"));
        var snapshot = original.CaptureSnapshot();

        // Restored onto the bare image: everything the template had prepared must travel in the snapshot.
        using var restored = IsolatedRuntime.Restore(host, snapshot);
        Assert.Null(restored.SandboxForTests.Template);
        Assert.Equal("kept", restored.Invoke(() => WarmStartState.Remembered));
        Assert.Equal(2, restored.Invoke(() => WarmStartState.Next()));

        using var fork = original.Fork();
        Assert.Equal(2, fork.Invoke(() => WarmStartState.Next()));
    }

    [Fact]
    public void WithWarmStartOffEverySandboxStartsFromTheImage()
    {
        using var host = TestHosts.Create(options => options.WarmStart = false).WithBinDirectoryAssemblyLoader();
        using var runtime = new IsolatedRuntime(host);
        Assert.Equal(1, runtime.Invoke(() => WarmStartState.Next()));
        Assert.Null(host.WarmStart);
        Assert.True(host.PrepareAsync(() => 1).IsCompletedSuccessfully);
        using var another = new IsolatedRuntime(host);
        Assert.Null(another.SandboxForTests.Template);
    }
}

/// <summary>A struct whose <see cref="Count"/> getter counts its calls in <see cref="WarmStartState"/> (inside the sandbox).</summary>
public struct CountingReading
{
    [MessagePack.IgnoreMember] // only Count goes on the wire
    private int _count;

    /// <summary>Added to the count.</summary>
    public int Offset { get; set; }

    /// <summary>Inside a sandbox, how many times this getter has run there (plus <see cref="Offset"/>); elsewhere what was sent.</summary>
    public int Count
    {
        readonly get => DotNetIsolatorHost.IsInSandbox ? WarmStartState.Next() + Offset : _count;
        set => _count = value;
    }
}

/// <summary>A class written by its own formatter, which counts its calls in <see cref="WarmStartState"/> (inside the sandbox).</summary>
[MessagePack.MessagePackFormatter(typeof(CountingFormatter))]
public sealed class CountedByFormatter
{
    /// <summary>What the formatter counted when this was written.</summary>
    public int Count { get; init; }
}

/// <summary>Writes a <see cref="CountedByFormatter"/> as the number of times it has written one in this sandbox.</summary>
public sealed class CountingFormatter : MessagePack.Formatters.IMessagePackFormatter<CountedByFormatter?>
{
    /// <inheritdoc />
    public void Serialize(ref MessagePack.MessagePackWriter writer, CountedByFormatter? value, MessagePack.MessagePackSerializerOptions options) =>
        writer.Write(DotNetIsolatorHost.IsInSandbox ? WarmStartState.Next() : value?.Count ?? 0);

    /// <inheritdoc />
    public CountedByFormatter? Deserialize(ref MessagePack.MessagePackReader reader, MessagePack.MessagePackSerializerOptions options) =>
        new() { Count = reader.ReadInt32() };
}

/// <summary>Statics that live inside sandboxes (each sandbox has its own).</summary>
public static class WarmStartState
{
    private static int s_counter;

    /// <summary>What <see cref="Remember"/> stored.</summary>
    public static string? Remembered { get; private set; }

    /// <summary>Counts calls.</summary>
    public static int Next() => ++s_counter;

    /// <summary>Stores a value.</summary>
    public static void Remember(string value) => Remembered = value;
}

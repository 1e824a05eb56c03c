using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Tests;

/// <summary>
/// Requests arrive as bytes (grain clients send them encoded), so any bytes at all may reach the guest dispatcher.
/// Whatever they are, the caller gets an <see cref="IsolatedException"/> that names the problem, and the sandbox
/// keeps its state and goes on working.
/// </summary>
public sealed class MalformedRequestTests : IDisposable
{
    private readonly IsolatedRuntime _runtime = new(TestHosts.Shared);

    public MalformedRequestTests() => _runtime.Invoke(() => { Box.Value = 7; });

    public void Dispose() => _runtime.Dispose();

    public static TheoryData<string, byte[], string> Requests() => new()
    {
        { "no bytes", [], "empty" },
        { "an empty array", [0x90], "empty" },
        { "not an array", [0x2a], "not a MessagePack array" },
        { "an array with no kind", [0x91], "kind could not be read" },
        { "an unknown kind", [0x91, 0x63], "Unknown request kind 99" },
        { "an invocation cut off before its key", [0x94, 0x01], "truncated" },
        { "an invocation whose key is a string", [0x94, 0x01, 0xa1, (byte)'k', 0xc0, 0xc0], "method key" },
        { "an invocation with a key cut off", [0x94, 0x01, 0xcf, 0x01, 0x02], "truncated" },
        { "an unknown key without a descriptor", [0x94, 0x01, 0xcf, 1, 2, 3, 4, 5, 6, 7, 8, 0xc0, 0xc0], "does not know method key 0102030405060708" },
        { "an unknown key with a malformed descriptor", [0x94, 0x01, 0x05, 0x2a, 0xc0], "descriptor was malformed" },
        { "an invocation cut off after its key", [0x94, 0x01, 0x05], "truncated" },
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task AMalformedRequestIsRefusedWithAMessageAndTheSandboxKeepsItsState(string what, byte[] request, string expected)
    {
        var reply = await _runtime.ExecuteAsync(request);

        var error = Assert.Throws<IsolatedException>(() => GuestRequests.ReadReply(reply));
        Assert.False(error.IsFatal, what);
        Assert.Contains(expected, error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(7, _runtime.Invoke(() => Box.Value));
    }

    [Fact]
    public async Task AKnownMethodWithItsTargetMissingIsRefused()
    {
        var x = 1;
        Func<int> lambda = () => x + Box.Value;
        Assert.Equal(8, _runtime.Invoke(lambda));
        var request = GuestRequests.InvokeDelegate(lambda, new HashSet<ulong>(), out var key);
        var withoutTarget = WithoutTarget(key);

        var reply = await _runtime.ExecuteAsync(withoutTarget);

        var error = Assert.Throws<IsolatedException>(() => GuestRequests.ReadReply(reply));

        Assert.Contains("target", error.Message, StringComparison.Ordinal);
        Assert.Contains("missing", error.Message, StringComparison.Ordinal);
        Assert.Equal(8, GuestRequests.Deserialize<int>(GuestRequests.ReadReply(await _runtime.ExecuteAsync(request))));
    }

    [Fact]
    public async Task AClosureFieldTheTypeDoesNotHaveIsRefusedByName()
    {
        var x = 1;
        Func<int> lambda = () => x + Box.Value;
        Assert.Equal(8, _runtime.Invoke(lambda));
        _ = GuestRequests.InvokeDelegate(lambda, new HashSet<ulong>(), out var key);

        var output = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(4);
        writer.Write((int)GuestRequestKind.InvokeDelegate);
        writer.Write(key);
        writer.WriteNil();
        writer.WriteMapHeader(1);
        writer.Write("noSuchField");
        writer.Write(3);
        writer.Flush();

        var reply = await _runtime.ExecuteAsync(output.WrittenSpan.ToArray());

        var error = Assert.Throws<IsolatedException>(() => GuestRequests.ReadReply(reply));

        Assert.Contains("noSuchField", error.Message, StringComparison.Ordinal);
        Assert.Equal(7, _runtime.Invoke(() => Box.Value));
    }

    [Fact]
    public async Task ACapturedValueOfTheWrongTypeIsRefusedNamingTheType()
    {
        var x = 1;
        Func<int> lambda = () => x + Box.Value;
        Assert.Equal(8, _runtime.Invoke(lambda));
        _ = GuestRequests.InvokeDelegate(lambda, new HashSet<ulong>(), out var key);

        var output = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(4);
        writer.Write((int)GuestRequestKind.InvokeDelegate);
        writer.Write(key);
        writer.WriteNil();
        writer.WriteMapHeader(1);
        writer.Write(nameof(x));
        writer.Write("not a number");
        writer.Flush();
        var reply = await _runtime.ExecuteAsync(output.WrittenSpan.ToArray());

        var error = Assert.Throws<IsolatedException>(() => GuestRequests.ReadReply(reply));
        Assert.False(error.IsFatal);
        Assert.Contains("System.Int32", error.Message, StringComparison.Ordinal);
        Assert.Equal(8, _runtime.Invoke(lambda));
    }

    private static class Box
    {
        public static int Value;
    }

    private static byte[] WithoutTarget(ulong key)
    {
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(4);
        writer.Write((int)GuestRequestKind.InvokeDelegate);
        writer.Write(key);
        writer.WriteNil();
        writer.WriteNil();
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }
}

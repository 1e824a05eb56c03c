using System.Buffers;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Tests;

/// <summary>
/// Requests arrive as bytes (grain clients send them encoded), so any bytes at all may reach the guest dispatcher.
/// Whatever they are, the caller gets an <see cref="IsolatedException"/> that names the problem as the request's
/// (not as an exception thrown by guest code), and the sandbox keeps its state and goes on working.
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
        { "an empty array16", [0xdc, 0x00, 0x00], "empty" },
        { "not an array", [0x2a], "not a MessagePack array" },
        { "an array with no kind", [0x91], "kind could not be read" },
        { "an array16 with no kind", [0xdc, 0x00, 0x01], "kind could not be read" },
        { "an unknown kind", [0x91, 0x63], "Unknown request kind 99" },
        { "an unknown kind in an array16", [0xdc, 0x00, 0x01, 0x63], "Unknown request kind 99" },
        { "an invocation cut off before its key", [0x94, 0x01], "truncated" },
        { "an invocation whose key is a string", [0x94, 0x01, 0xa1, (byte)'k', 0xc0, 0xc0], "method key" },
        { "an invocation whose key is negative", [0x94, 0x01, 0xff, 0xc0, 0xc0], "method key" },
        { "an invocation with a key cut off", [0x94, 0x01, 0xcf, 0x01, 0x02], "truncated" },
        { "an unknown key without a descriptor", [0x94, 0x01, 0xcf, 1, 2, 3, 4, 5, 6, 7, 8, 0xc0, 0xc0], "does not know method key 0102030405060708" },
        { "an unknown key with a malformed descriptor", [0x94, 0x01, 0x05, 0x2a, 0xc0], "descriptor was malformed" },
        { "an unknown key with a descriptor of empty names", [0x94, 0x01, 0x05, 0x94, 0xa0, 0xa0, 0x00, 0xa0, 0xc0], "descriptor" },
        { "an invocation cut off after its key", [0x94, 0x01, 0x05], "truncated" },
        { "an unknown key whose descriptor's length runs past the end", [0x94, 0x01, 0x05, 0xc6, 0x7f, 0xff, 0xff, 0xff], "descriptor was malformed" },
    };

    [Theory]
    [InlineData(new byte[] { 0x92, 0x00, 0xc6, 0x7f, 0xff, 0xff, 0xff })] // a result whose length runs past the end
    [InlineData(new byte[] { 0x92, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc0 })] // a status too large for its field
    [InlineData(new byte[] { 0x92, 0x00 })] // no result
    public void AMalformedReplyFromTheGuestIsAnIsolatedExceptionOnTheHost(byte[] reply)
    {
        // Replies come from untrusted guest code: the host names them malformed, whatever they are.
        var error = Assert.Throws<IsolatedException>(() => GuestRequests.ReadReplyOrPending(reply));

        Assert.Matches("malformed|truncated", error.Message);
    }

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task AMalformedRequestIsRefusedWithAMessageAndTheSandboxKeepsItsState(string what, byte[] request, string expected)
    {
        var error = RefusedAsBadRequest(await _runtime.ExecuteAsync(request), what);

        Assert.Contains(expected, error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(7, _runtime.Invoke(() => Box.Value));
    }

    public static TheoryData<string, string> MalformedTargets() => new()
    {
        // The lambda below captures one int, x: its target is {"x": <int>}.
        { "a captured value cut off", "81 a1 78 d2 00" },
        { "a map without its value", "81 a1 78" },
        { "a map header alone", "81" },
        { "a captured value of the wrong type", "81 a1 78 a4 74 65 78 74" },
        { "a field the closure does not have", "81 ab 6e 6f 53 75 63 68 46 69 65 6c 64 03" },
        { "a target that is not a map", "2a" },
    };

    [Theory]
    [MemberData(nameof(MalformedTargets))]
    public async Task AMalformedTargetOfAKnownMethodIsRefused(string what, string targetHex)
    {
        var x = 1;
        Func<int> lambda = () => x + Box.Value;
        Assert.Equal(8, _runtime.Invoke(lambda));

        var error = RefusedAsBadRequest(await _runtime.ExecuteAsync(Request(KeyOf(lambda), descriptor: null, Convert.FromHexString(targetHex.Replace(" ", "")))), what);

        Assert.Contains("target", error.Message, StringComparison.Ordinal);
        Assert.Equal(8, _runtime.Invoke(lambda));
    }

    [Fact]
    public async Task AMalformedTargetNamesWhatIsWrongWithIt()
    {
        var x = 1;
        Func<int> lambda = () => x + Box.Value;
        Assert.Equal(8, _runtime.Invoke(lambda));

        var wrongType = RefusedAsBadRequest(await _runtime.ExecuteAsync(Request(KeyOf(lambda), null, Convert.FromHexString("81a178a474657874"))), "wrong type");
        var noSuchField = RefusedAsBadRequest(await _runtime.ExecuteAsync(Request(KeyOf(lambda), null, Convert.FromHexString("81ab6e6f537563684669656c6403"))), "no such field");
        var cutOff = RefusedAsBadRequest(await _runtime.ExecuteAsync(Request(KeyOf(lambda), null, Convert.FromHexString("81a178d200"))), "cut off");

        Assert.Contains("System.Int32", wrongType.Message, StringComparison.Ordinal);
        Assert.Contains("noSuchField", noSuchField.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", cutOff.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AKnownMethodWithItsTargetMissingIsRefused()
    {
        var x = 1;
        Func<int> lambda = () => x + Box.Value;
        Assert.Equal(8, _runtime.Invoke(lambda));

        var error = RefusedAsBadRequest(await _runtime.ExecuteAsync(Request(KeyOf(lambda), descriptor: null, target: [0xc0])), "no target");

        Assert.Contains("target", error.Message, StringComparison.Ordinal);
        Assert.Contains("missing", error.Message, StringComparison.Ordinal);
        var request = GuestRequests.InvokeDelegate(lambda, new HashSet<ulong>(), out _);
        Assert.Equal(8, GuestRequests.Deserialize<int>(GuestRequests.ReadReply(await _runtime.ExecuteAsync(request))));
    }

    [Theory]
    [InlineData("a descriptor cut off", new byte[] { 0x94, 0xa1 }, "truncated")]
    [InlineData("a descriptor with a reserved code", new byte[] { 0xc1 }, "malformed")]
    [InlineData("a descriptor whose length runs past the end", new byte[] { 0xc6, 0x7f, 0xff, 0xff, 0xff }, "truncated")]
    public async Task AKnownMethodWithAMalformedDescriptorIsRefused(string what, byte[] descriptor, string expected)
    {
        var x = 1;
        Func<int> lambda = () => x + Box.Value;
        Assert.Equal(8, _runtime.Invoke(lambda));

        var error = RefusedAsBadRequest(await _runtime.ExecuteAsync(Request(KeyOf(lambda), descriptor, target: [0x80])), what);

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(8, _runtime.Invoke(lambda));
    }

    [Fact]
    public async Task AKeyInASignedFormIsTheSameKey()
    {
        // Any of MessagePack's integer forms may carry a key: a descriptor sent under key 5 in its signed 64-bit form
        // teaches the sandbox key 5, which then works in its smallest form.
        var x = 1;
        Func<int> lambda = () => x + Box.Value;
        var full = GuestRequests.InvokeDelegate(lambda, new HashSet<ulong>(), out _);
        var reader = new MessagePackReader(full);
        reader.ReadArrayHeader();
        reader.ReadInt32();
        reader.Skip();
        var descriptor = reader.ReadRaw().ToArray();
        byte[] signedFive = [0xd3, 0, 0, 0, 0, 0, 0, 0, 5];

        var first = await _runtime.ExecuteAsync([0x94, 0x01, .. signedFive, .. descriptor, 0x81, 0xa1, (byte)'x', 0x05]);
        var second = await _runtime.ExecuteAsync([0x94, 0x01, 0x05, 0xc0, 0x81, 0xa1, (byte)'x', 0x06]);

        Assert.Equal(12, GuestRequests.Deserialize<int>(GuestRequests.ReadReply(first)));
        Assert.Equal(13, GuestRequests.Deserialize<int>(GuestRequests.ReadReply(second)));
    }

    [Fact]
    public async Task GuestCodeThatThrowsWhatAMalformedRequestWouldIsStillAGuestException()
    {
        // The lambda's own EndOfStreamException is guest code throwing, not a truncated request.
        var reply = await _runtime.ExecuteAsync(GuestRequests.InvokeDelegate(() => ThrowEndOfStream(), new HashSet<ulong>(), out _));

        var error = Assert.Throws<IsolatedException>(() => GuestRequests.ReadReply(reply));

        Assert.Equal(typeof(EndOfStreamException).FullName, error.GuestExceptionType);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(99)]
    [InlineData(20261201)]
    public async Task MutatedInvocationsAreAnsweredOrRefusedAsBadRequestsNeverFatal(int seed)
    {
        // Truncations, flipped and inserted bytes anywhere after the kind of a valid invocation (seeded, so repeatable):
        // each is answered or refused as the request's fault, and the sandbox keeps its state.
        var x = 1;
        Func<int> lambda = () => x + Box.Value;
        Assert.Equal(8, _runtime.Invoke(lambda));
        var valid = Request(KeyOf(lambda), descriptor: null, target: [0x81, 0xa1, (byte)'x', 0x05]);
        await SendMutationsAsync([valid], 3000, seed);

        Assert.Equal(8, _runtime.Invoke(lambda));
        Assert.Equal(0, _runtime.ResetCount);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(20261201)]
    public async Task MutatedObjectRequestsAreAnsweredOrRefusedAsBadRequestsNeverFatal(int seed)
    {
        using var doubler = _runtime.CreateObject<Doubler>();
        Assert.Equal(42, doubler.Invoke<int, int>("Twice", 21));
        var handle = doubler.HandleFor(_runtime);
        byte[][] valid =
        [
            GuestRequests.InvokeMethod(handle, null, "Twice", [21], ResultMode.Value, _ => null),
            GuestRequests.CreateObject(typeof(Doubler).Assembly.GetName().Name!, typeof(Doubler).FullName!, [], _ => null),
            GuestRequests.GetObjectValue(handle),
        ];
        await SendMutationsAsync(valid, 1500, seed);

        Assert.Equal(42, doubler.Invoke<int, int>("Twice", 21));
        Assert.Equal(0, _runtime.ResetCount);
    }

    [Theory]
    [InlineData(new byte[] { 0x94, 0x09, 0x01, 0xc3, 0xc0 })] // complete operation 1 (forging an awaited callback's result)
    [InlineData(new byte[] { 0xdc, 0x00, 0x02, 0x0b, 0x90 })] // prepare, behind an array16 header
    [InlineData(new byte[] { 0x91, 0x03 })] // collect garbage
    [InlineData(new byte[] { 0x91, 0x02 })] // warm up
    public async Task RequestKindsOnlyTheHostSendsAreRefusedFromCallers(byte[] request)
    {
        var error = RefusedAsBadRequest(await _runtime.ExecuteAsync(request), Convert.ToHexString(request));

        Assert.Contains("only by the host", error.Message, StringComparison.Ordinal);
        Assert.Equal(7, _runtime.Invoke(() => Box.Value));
    }

    [Fact]
    public void ASetterThatThrowsWhatTheReaderWouldWhileAnArgumentIsReadIsStillAGuestException()
    {
        // MessagePack wraps what the user's setter throws; an OverflowException from the user's code is not malformed bytes.
        using var taker = _runtime.CreateObject<Taker>();

        var error = Assert.Throws<IsolatedException>(() => taker.Invoke<Touchy, int>("Take", new Touchy()));

        Assert.NotNull(error.GuestExceptionType);
        Assert.Contains("the setter's own", error.GuestDetails, StringComparison.Ordinal);
        Assert.Equal(1, taker.Invoke<int>("Ping"));
    }

    public sealed class Taker
    {
        public int Take(Touchy value) => value.Value;

        public int Ping() => 1;
    }

    public sealed class Touchy
    {
        public bool Refuse = true;

        public int Value
        {
            get => 0;
            set
            {
                if (Refuse)
                {
                    throw new OverflowException("the setter's own");
                }
            }
        }
    }

    [Fact]
    public void AConstructorThatThrowsWhatAMalformedRequestWouldIsStillAGuestException()
    {
        var error = Assert.Throws<IsolatedException>(() => _runtime.CreateObject<ThrowsEndOfStream>());

        Assert.Equal(typeof(EndOfStreamException).FullName, error.GuestExceptionType);
        Assert.Equal("the constructor's own", error.Message);
    }

    public sealed class ThrowsEndOfStream
    {
        public ThrowsEndOfStream() => throw new EndOfStreamException("the constructor's own");
    }

    public sealed class Doubler
    {
        public int Twice(int value) => value * 2;
    }

    /// <summary>
    /// Sends <paramref name="count"/> seeded mutations of the <paramref name="valid"/> requests (in turn) and checks that
    /// each is answered or refused as a bad request, never fatal and never as a guest exception; some of each must occur.
    /// </summary>
    private async Task SendMutationsAsync(IReadOnlyList<byte[]> valid, int count, int seed)
    {
        var random = new Random(seed);
        var (answered, refused) = (0, 0);
        for (var i = 0; i < count; i++)
        {
            var mutated = Mutate(valid[i % valid.Count], random);
            var reply = await _runtime.ExecuteAsync(mutated);
            try
            {
                GuestRequests.ReadReply(reply);
                answered++;
            }
            catch (IsolatedException e)
            {
                Assert.False(e.IsFatal, Convert.ToHexString(mutated));
                Assert.True(e.GuestExceptionType is null, $"{Convert.ToHexString(mutated)}: {e.GuestExceptionType}: {e.Message}");
                refused++;
            }
        }
        Assert.True(answered > 0 && refused > 0, $"{answered} answered, {refused} refused");
    }

    private static byte[] Mutate(byte[] valid, Random random)
    {
        var bytes = valid.ToList();
        for (var edits = random.Next(1, 4); edits > 0; edits--)
        {
            var at = random.Next(2, Math.Max(3, bytes.Count)); // never the array header or the kind
            switch (random.Next(4))
            {
                case 0:
                    bytes.RemoveRange(Math.Min(at, bytes.Count), bytes.Count - Math.Min(at, bytes.Count));
                    break;
                case 1 when at < bytes.Count:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 2:
                    bytes.Insert(Math.Min(at, bytes.Count), (byte)random.Next(256));
                    break;
                default:
                    if (at < bytes.Count)
                    {
                        bytes.RemoveAt(at);
                    }
                    break;
            }
        }
        return [.. bytes];
    }

    private static int ThrowEndOfStream() => throw new EndOfStreamException("the guest's own stream ended");

    private static IsolatedException RefusedAsBadRequest(byte[] reply, string what)
    {
        var error = Assert.Throws<IsolatedException>(() => GuestRequests.ReadReply(reply));
        Assert.False(error.IsFatal, what);
        // A refused request has no guest exception type: it is the caller's mistake, not guest code throwing.
        Assert.True(error.GuestExceptionType is null, $"{what}: reported as guest exception {error.GuestExceptionType}: {error.Message}");
        return error;
    }

    private static ulong KeyOf(Delegate lambda)
    {
        _ = GuestRequests.InvokeDelegate(lambda, new HashSet<ulong>(), out var key);
        return key;
    }

    /// <summary><c>[InvokeDelegate, key, descriptor | nil, target]</c> with the given raw descriptor and target bytes.</summary>
    private static byte[] Request(ulong key, byte[]? descriptor, byte[] target)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(4);
        writer.Write((int)GuestRequestKind.InvokeDelegate);
        writer.Write(key);
        if (descriptor is null)
        {
            writer.WriteNil();
        }
        else
        {
            writer.WriteRaw(descriptor);
        }
        writer.WriteRaw(target);
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    private static class Box
    {
        public static int Value;
    }
}

namespace IsolateGrains.Tests;

/// <summary>Values captured by lambdas go in, results of any serializable type come out.</summary>
public sealed class CaptureAndResultTests : IDisposable
{
    private readonly IsolatedRuntime _runtime = new(TestHosts.Shared);

    [Fact]
    public void PrimitivesAndStringsRoundTrip()
    {
        int i = -7;
        long l = long.MaxValue;
        double d = 2.5;
        bool b = true;
        char c = 'ä';
        string s = "héllo ✓";
        decimal m = 12.34m;

        var result = _runtime.Invoke(() => $"{i}|{l}|{d}|{b}|{c}|{s}|{m}");

        Assert.Equal($"{i}|{l}|{d}|{b}|{c}|{s}|{m}", result);
    }

    [Fact]
    public void PrimitiveResultsOfEveryWidthComeBackExactly()
    {
        // The guest writes int, long, bool, double and string results itself (not through the serializer).
        long[] numbers = [0, 1, 127, 128, 255, 256, 65535, 65536, uint.MaxValue, uint.MaxValue + 1L, -1, -32, -33, -128, -129, -32768, -32769, int.MinValue, int.MaxValue, long.MinValue, long.MaxValue];
        double[] doubles = [0.0, -0.0, 1.5, double.Epsilon, double.MaxValue, double.NegativeInfinity, double.NaN];
        string?[] strings = [null, "", "ä", new string('a', 31), new string('b', 32), new string('c', 255), new string('d', 256), new string('é', 40_000), new string('f', 70_000)];

        foreach (var number in numbers)
        {
            Assert.Equal(number, _runtime.Invoke(() => number));
            if (number is >= int.MinValue and <= int.MaxValue)
            {
                var narrow = (int)number;
                Assert.Equal(narrow, _runtime.Invoke(() => narrow));
            }
        }
        foreach (var value in doubles)
        {
            Assert.Equal(BitConverter.DoubleToInt64Bits(value), BitConverter.DoubleToInt64Bits(_runtime.Invoke(() => value)));
        }
        foreach (var text in strings)
        {
            Assert.Equal(text, _runtime.Invoke(() => text));
        }
        Assert.True(_runtime.Invoke(() => numbers.Length > 0));
        Assert.False(_runtime.Invoke(() => numbers.Length == 0));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(200L)]
    [InlineData(-33L)]
    [InlineData(70_000L)]
    [InlineData(long.MinValue)]
    [InlineData(long.MaxValue)]
    public void PrimitiveResultsAreTheBytesMessagePackWrites(long number)
    {
        // A caller that decodes the reply as object sees the same types as from the serializer.
        Assert.Equal(SerializedReply(number), RawReply(() => number));
        var text = new string('x', (int)(Math.Abs(number % 300)));
        Assert.Equal(SerializedReply(text), RawReply(() => text));
        var real = number / 3.0;
        Assert.Equal(SerializedReply(real), RawReply(() => real));
        var flag = number > 0;
        Assert.Equal(SerializedReply(flag), RawReply(() => flag));
    }

    private byte[] RawReply<T>(Func<T> lambda)
    {
        var request = IsolateGrains.Protocol.GuestRequests.InvokeDelegate(lambda, new HashSet<ulong>(), out _);
        return _runtime.ExecuteAsync(request).GetAwaiter().GetResult();
    }

    private static byte[] SerializedReply<T>(T value)
    {
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new MessagePack.MessagePackWriter(output);
        writer.WriteArrayHeader(2);
        writer.Write(0);
        MessagePack.MessagePackSerializer.Serialize(ref writer, value, IsolateGrains.Protocol.IsolatedSerializer.Options);
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    [Fact]
    public void ListsAndDictionariesAreCopiedIn()
    {
        var numbers = new List<int> { 1, 2, 3, 4 };
        var prices = new Dictionary<string, decimal> { ["apple"] = 1.5m, ["pear"] = 2.25m };

        var result = _runtime.Invoke(() =>
        {
            numbers.Add(100);
            return (Sum: numbers.Sum(), Count: numbers.Count, Total: prices.Values.Sum(), Keys: string.Join(",", prices.Keys.Order()));
        });

        Assert.Equal((110, 5, 3.75m, "apple,pear"), result);
        Assert.Equal(4, numbers.Count); // the host's list was not touched
    }

    [Fact]
    public void NestedUserClassesAreCopiedInAndOut()
    {
        var order = new Order
        {
            Id = 7,
            Customer = new Customer { Name = "Ada", Address = new Address { City = "London" } },
            Lines = [new OrderLine { Product = "tea", Quantity = 3 }, new OrderLine { Product = "cake", Quantity = 1 }],
        };

        var changed = _runtime.Invoke(() =>
        {
            order.Customer!.Address!.City = "Paris";
            order.Lines.Add(new OrderLine { Product = "jam", Quantity = 2 });
            return order;
        });

        Assert.Equal("Paris", changed.Customer!.Address!.City);
        Assert.Equal(["tea", "cake", "jam"], changed.Lines.Select(line => line.Product));
        Assert.Equal(6, changed.Lines.Sum(line => line.Quantity));
        Assert.Equal("London", order.Customer!.Address!.City);
        Assert.Equal(2, order.Lines.Count);
    }

    [Fact]
    public void ResultsMayBeRecordsAndClassesWithPrivateState()
    {
        var seed = 41;

        var account = _runtime.Invoke(() =>
        {
            var created = new Account("ada");
            created.Deposit(seed);
            created.Deposit(1);
            return created;
        });
        var point = _runtime.Invoke(() => new Point(seed, -seed));

        Assert.Equal("ada", account.Owner);
        Assert.Equal(42, account.Balance);
        Assert.Equal(2, account.DepositCount);
        Assert.Equal(new Point(41, -41), point);
    }

    [Fact]
    public void DatesGuidsEnumsAndNullablesRoundTrip()
    {
        var when = new DateTime(2024, 2, 29, 13, 45, 0, DateTimeKind.Utc);
        var id = Guid.NewGuid();
        int? missing = null;

        var result = _runtime.Invoke(() => (when.AddDays(1), id, DayOfWeek.Friday, missing, TimeSpan.FromMinutes(90)));

        Assert.Equal((when.AddDays(1), id, DayOfWeek.Friday, (int?)null, TimeSpan.FromMinutes(90)), result);
    }

    [Fact]
    public void ActionsRunForTheirEffectsInsideTheSandbox()
    {
        var runtime = _runtime;
        runtime.Invoke(() => { SandboxState.Log.Add("first"); });
        runtime.Invoke(() => { SandboxState.Log.Add("second"); });

        var log = runtime.Invoke(() => string.Join(",", SandboxState.Log));

        Assert.Equal("first,second", log);
        Assert.Empty(SandboxState.Log);
    }

    [Fact]
    public void StaticLambdasWithNoCapturesWork()
    {
        Assert.Equal(4, _runtime.Invoke(static () => 2 + 2));
        Assert.Equal(42, _runtime.Invoke(Answer));
    }

    [Fact]
    public void OnlyTheCapturedValuesALambdaUsesAreSent()
    {
        // The compiler puts 'runtime' (not serializable) and 'factor' in one closure object.
        using var runtime = new IsolatedRuntime(TestHosts.Shared);
        var factor = 6;
        Func<int> unrelated = () => runtime.Name.Length;

        var result = runtime.Invoke(() => factor * 7);

        Assert.Equal(42, result);
        Assert.True(unrelated() > 0);
    }

    [Fact]
    public void NestedScopesAndLocalFunctionsSeeTheirCapturedValues()
    {
        var outer = 10;
        var total = 0;
        for (var i = 1; i <= 2; i++)
        {
            var inner = i;
            total += _runtime.Invoke(() =>
            {
                int Twice(int x) => x * 2 + outer;
                return Twice(inner);
            });
        }

        Assert.Equal((2 + 10) + (4 + 10), total);
    }

    [Fact]
    public void ALambdaThatUsesSomethingUnserializableGetsAMessageNamingIt()
    {
        var runtime = _runtime;
        using var stream = new MemoryStream();

        var error = Assert.Throws<IsolatedException>(() => runtime.Invoke(() => stream.Length));

        Assert.Contains("stream", error.Message);
        Assert.Contains(nameof(MemoryStream), error.Message);
    }

    [Fact]
    public void LambdasContainingNestedLambdasWork()
    {
        var youngest = _runtime.Invoke(static () => new[] { ("Ann", 5), ("Bob", 7), ("Cy", 3) }.OrderBy(p => p.Item2).First().Item1);
        var words = new[] { "b", "a", "c" };
        var sorted = _runtime.Invoke(() => string.Join(",", words.OrderBy(w => w)));

        Assert.Equal("Cy", youngest);
        Assert.Equal("a,b,c", sorted);
    }

    private static int Answer() => 42;

    public void Dispose() => _runtime.Dispose();

    public sealed class Order
    {
        public int Id { get; set; }
        public Customer? Customer { get; set; }
        public List<OrderLine> Lines { get; set; } = [];
    }

    public sealed class Customer
    {
        public string? Name { get; set; }
        public Address? Address { get; set; }
    }

    public sealed class Address
    {
        public string? City { get; set; }
    }

    public sealed class OrderLine
    {
        public string? Product { get; set; }
        public int Quantity { get; set; }
    }

    public sealed class Account
    {
        private int _balance;
        private int _deposits;

        public Account(string owner) => Owner = owner;

        private Account() => Owner = "";

        public string Owner { get; private set; }

        public int Balance => _balance;

        public int DepositCount => _deposits;

        public void Deposit(int amount)
        {
            _balance += amount;
            _deposits++;
        }
    }

    public sealed record Point(int X, int Y);

    private static class SandboxState
    {
        public static readonly List<string> Log = [];
    }
}

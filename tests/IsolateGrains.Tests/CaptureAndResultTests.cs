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

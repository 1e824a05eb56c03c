namespace IsolateGrains.Tests;

/// <summary>Objects that live in the sandbox: created, invoked by name, passed by handle, released.</summary>
public sealed class IsolatedObjectTests : IDisposable
{
    private static readonly string AssemblyName = typeof(IsolatedObjectTests).Assembly.GetName().Name!;
    private readonly IsolatedRuntime _runtime = new(TestHosts.Shared);

    [Fact]
    public void CreateObjectUsesTheDefaultConstructorAndKeepsStateBetweenCalls()
    {
        using var counter = _runtime.CreateObject<Counter>();

        counter.InvokeVoid("Increment");
        counter.InvokeVoid("Add", 10);
        var value = counter.Invoke<int>("Get");

        Assert.Equal(11, value);
        Assert.Equal(typeof(Counter).FullName, counter.TypeName);
    }

    [Fact]
    public void ConstructorArgumentsPickTheMatchingConstructor()
    {
        using var fromInt = _runtime.CreateObject<Counter>(5);
        using var fromText = _runtime.CreateObject<Counter>("start", 7);

        Assert.Equal(5, fromInt.Invoke<int>("Get"));
        Assert.Equal("start:7", fromText.Invoke<string>("Describe"));
    }

    [Fact]
    public void ObjectsCanBeCreatedByNameIncludingNestedTypes()
    {
        using var byName = _runtime.CreateObject(AssemblyName, "IsolateGrains.Tests", "IsolatedObjectTests+Counter", 3);

        Assert.Equal(3, byName.Invoke<int>("Get"));
    }

    [Fact]
    public void MethodsOfOneToFourArgumentsPrivateOnesAndOverloadsWork()
    {
        using var calculator = _runtime.CreateObject<Calculator>();

        Assert.Equal(3, calculator.Invoke<int, int>("Negate", -3));
        Assert.Equal(5, calculator.Invoke<int, int, int>("Add", 2, 3));
        Assert.Equal(9, calculator.Invoke<int, int, int, int>("Add", 2, 3, 4));
        Assert.Equal(10, calculator.Invoke<int, int, int, int, int>("Add", 1, 2, 3, 4));
        Assert.Equal("2.5!", calculator.Invoke<double, string>("Format", 2.5));
        Assert.Equal("text!", calculator.Invoke<string, string>("Format", "text"));
        Assert.Equal("secret", calculator.Invoke<string>("Hidden"));
        Assert.Equal(42L, calculator.Invoke<int, long>("Widen", 42)); // an int argument fits a long parameter
    }

    [Fact]
    public void CopyObjectPlacesACopyOfAHostValueInTheSandbox()
    {
        var profile = new Profile { Name = "ada", Tags = ["a", "b"] };

        using var copy = _runtime.CopyObject(profile);
        copy.InvokeVoid("AddTag", "c");

        Assert.Equal(3, copy.Invoke<int>("TagCount"));
        Assert.Equal(2, profile.Tags.Count);
        Assert.Equal(["a", "b", "c"], copy.GetValue<Profile>().Tags);
    }

    [Fact]
    public void ATypeWhoseDeserializationThrowsGivesThatMessage()
    {
        var error = Assert.Throws<IsolatedException>(() => _runtime.CopyObject(new Picky { Value = -1 }));

        Assert.Contains("negative values are not accepted", error.Message);
    }

    [Fact]
    public void ComplexArgumentsAndResultsRoundTrip()
    {
        using var echo = _runtime.CreateObject<Echo>();
        var mixed = new Dictionary<string, object> { ["n"] = 5, ["s"] = "five", ["b"] = true };
        var when = new DateTime(2030, 5, 6, 7, 8, 9, DateTimeKind.Utc);
        var id = Guid.NewGuid();
        var record = new Shape("circle", [1.5, 2.5]);

        Assert.Equal(3, echo.Invoke<Dictionary<string, object>, int>("CountEntries", mixed));
        Assert.Equal("five", echo.Invoke<Dictionary<string, object>, string>("Lookup", mixed));
        Assert.Equal(when.AddHours(1), echo.Invoke<DateTime, DateTime>("Same", when.AddHours(1)));
        Assert.Equal(TimeSpan.FromSeconds(90), echo.Invoke<TimeSpan, TimeSpan>("Same", TimeSpan.FromSeconds(90)));
        Assert.Equal(id, echo.Invoke<Guid, Guid>("Same", id));
        Assert.Equal(ConsoleColor.Cyan, echo.Invoke<ConsoleColor, ConsoleColor>("Same", ConsoleColor.Cyan));
        Assert.Null(echo.Invoke<int?, int?>("Same", null));
        Assert.Equal(7, echo.Invoke<int?, int?>("Same", 7));
        Assert.Equal([3, 2, 1], echo.Invoke<int[], int[]>("Reverse", [1, 2, 3]));
        Assert.Equal(record with { Name = "CIRCLE" }, echo.Invoke<Shape, Shape>("Upper", record));
        var secretive = echo.Invoke<Secretive>("MakeSecretive");
        Assert.Equal(99, secretive.Reveal());
    }

    [Fact]
    public void AnObjectPassedAsAnArgumentArrivesAsTheSameGuestObject()
    {
        using var list = _runtime.CreateObject<Registry>();
        using var item = _runtime.CreateObject<Counter>(1);

        list.InvokeVoid("Add", item);
        item.InvokeVoid("Add", 41);

        Assert.Equal(42, list.Invoke<int>("FirstValue"));
        Assert.True(list.Invoke<IsolatedObject, bool>("Contains", item));
    }

    [Fact]
    public void AMethodMayReturnAHandleInsteadOfACopy()
    {
        using var factory = _runtime.CreateObject<Registry>();

        using var created = factory.InvokeHandle("CreateCounter", 10)!;
        created.InvokeVoid("Increment");

        Assert.Equal(typeof(Counter).FullName, created.TypeName);
        Assert.Equal(11, created.Invoke<int>("Get"));
        Assert.Equal(11, factory.Invoke<int>("FirstValue"));
    }

    [Fact]
    public void MethodsFoundOnceCanBeInvokedOnAnyTarget()
    {
        using var first = _runtime.CreateObject<Counter>(1);
        using var second = _runtime.CreateObject<Counter>(100);
        var add = _runtime.GetMethod(typeof(Counter), "Add");
        var get = first.FindMethod("Get");
        var parse = _runtime.GetMethod(AssemblyName, "IsolateGrains.Tests", "IsolatedObjectTests", "Calculator", "ParseStatic");

        add.InvokeVoid(first, 1);
        add.InvokeVoid(second, 1);

        Assert.Equal(2, get.Invoke<int>(first));
        Assert.Equal(101, get.Invoke<int>(second));
        Assert.True(parse.IsStatic);
        Assert.Equal(17, parse.Invoke<string, int>(null, "17"));
    }

    [Fact]
    public void MissingNamesAreReportedPrecisely()
    {
        using var counter = _runtime.CreateObject<Counter>();

        var noAssembly = Assert.Throws<IsolatedException>(() => _runtime.CreateObject("No.Such.Assembly", "Ns", "Type"));
        var noType = Assert.Throws<IsolatedException>(() => _runtime.CreateObject(AssemblyName, "IsolateGrains.Tests", "NoSuchType"));
        var noMethod = Assert.Throws<IsolatedException>(() => counter.InvokeVoid("NoSuchMethod"));
        var wrongCount = Assert.Throws<IsolatedException>(() => counter.InvokeVoid("Add", 1, 2, 3));
        var noConstructor = Assert.Throws<IsolatedException>(() => _runtime.CreateObject<Counter>(1.5, 2.5, 3.5));

        Assert.Contains("Assembly 'No.Such.Assembly'", noAssembly.Message);
        Assert.Contains("Type 'IsolateGrains.Tests.NoSuchType' was not found in assembly", noType.Message);
        Assert.Contains("Method 'NoSuchMethod' was not found on type", noMethod.Message);
        Assert.Contains("takes 1 parameter(s), not 3", wrongCount.Message);
        Assert.Contains("has no constructor taking", noConstructor.Message);
        Assert.Equal(0, counter.Invoke<int>("Get")); // the object is still fine
    }

    [Fact]
    public void RepeatedCallsBehaveExactlyAsTheFirstOnes()
    {
        // The first calls of a method go through reflection, later ones through an invoker compiled for it.
        using var calculator = _runtime.CreateObject<Calculator>();
        using var special = _runtime.CreateObject<SpecialCalculator>();
        for (var round = 0; round < 5; round++)
        {
            Assert.Equal(-round, calculator.Invoke<int, int>("Negate", round));
            Assert.Equal(round + 10, calculator.Invoke<int, int, int>("Add", round, 10));
            Assert.Equal("2.5!", calculator.Invoke<double, string>("Format", 2.5));
            Assert.Equal("text!", calculator.Invoke<string, string>("Format", "text"));
            Assert.Equal("secret", calculator.Invoke<string>("Hidden"));
            Assert.Equal(42L + round, calculator.Invoke<int, long>("Widen", 42 + round));
            Assert.Equal(round % 2 == 0 ? "Monday:none" : $"Friday:{round}", calculator.Invoke<DayOfWeek, int?, string>("Pick", round % 2 == 0 ? DayOfWeek.Monday : DayOfWeek.Friday, round % 2 == 0 ? null : round));
            Assert.Equal("null!", calculator.Invoke<string?, string>("Format", null));
            Assert.Equal("special", special.Invoke<string>("Kind"));
            Assert.Equal("calculator", calculator.Invoke<string>("Kind"));
            var error = Assert.Throws<IsolatedException>(() => calculator.Invoke<int, int>("Divide", 0));
            Assert.Equal(typeof(DivideByZeroException).FullName, error.GuestExceptionType);
            Assert.Contains("Divide", error.GuestStackTrace);
        }
    }

    [Fact]
    public void PrimitiveResultsOfMethodsComeBackExactly()
    {
        // The guest writes boxed int, long, bool, double and string results itself (not through the serializer).
        using var values = _runtime.CreateObject<Values>();
        for (var round = 0; round < 4; round++)
        {
            foreach (var number in new long[] { 0, 127, 128, -33, 65536, uint.MaxValue, long.MinValue, long.MaxValue })
            {
                Assert.Equal(number, values.Invoke<long, long>("Long", number));
                var narrow = (int)Math.Clamp(number, int.MinValue, int.MaxValue);
                Assert.Equal(narrow, values.Invoke<int, int>("Int", narrow));
            }
            foreach (var real in new[] { -0.0, double.NaN, double.MaxValue, 1e-300 })
            {
                Assert.Equal(BitConverter.DoubleToInt64Bits(real), BitConverter.DoubleToInt64Bits(values.Invoke<double, double>("Double", real)));
            }
            foreach (var text in new string?[] { null, "", "é✓", new string('z', 300) })
            {
                Assert.Equal(text, values.Invoke<string?, string?>("Text", text));
            }
            Assert.True(values.Invoke<bool, bool>("Flag", true));
            Assert.False(values.Invoke<bool, bool>("Flag", false));
            Assert.Equal(42, values.Invoke<object>("Boxed"));
        }
    }

    public sealed class Values
    {
        public int Int(int value) => value;

        public long Long(long value) => value;

        public double Double(double value) => value;

        public string? Text(string? value) => value;

        public bool Flag(bool value) => value;

        public object Boxed() => 42;
    }

    [Fact]
    public void GuestExceptionsFromMethodsCarryTheGuestStack()
    {
        using var calculator = _runtime.CreateObject<Calculator>();

        var error = Assert.Throws<IsolatedException>(() => calculator.Invoke<int, int>("Divide", 0));

        Assert.Equal(typeof(DivideByZeroException).FullName, error.GuestExceptionType);
        Assert.Contains("Divide", error.GuestStackTrace);
    }

    [Fact]
    public void DisposedObjectsAreReleasedInTheGuest()
    {
        var runtime = _runtime;
        runtime.Invoke(() => Tracked.Reset());
        var tracked = runtime.CreateObject<Tracked>();
        Assert.Equal(1, runtime.Invoke(() => Tracked.CountAlive()));

        tracked.Dispose();

        Assert.Equal(0, runtime.Invoke(() => Tracked.CountAlive()));
        Assert.Throws<ObjectDisposedException>(() => tracked.InvokeVoid("ToString"));
    }

    [Fact]
    public void ObjectsDoNotCrossSandboxes()
    {
        using var other = new IsolatedRuntime(TestHosts.Shared);
        using var registry = other.CreateObject<Registry>();
        using var counter = _runtime.CreateObject<Counter>();

        var error = Assert.Throws<IsolatedException>(() => registry.InvokeVoid("Add", counter));

        Assert.Contains("belongs to another sandbox", error.Message);
    }

    public void Dispose() => _runtime.Dispose();

    public sealed class Counter
    {
        private int _value;
        private readonly string _label = "";

        public Counter()
        {
        }

        public Counter(int start) => _value = start;

        public Counter(string label, int start)
        {
            _label = label;
            _value = start;
        }

        public void Increment() => _value++;

        public void Add(int amount) => _value += amount;

        public int Get() => _value;

        public string Describe() => $"{_label}:{_value}";
    }

    public sealed class SpecialCalculator : Calculator
    {
        public override string Kind() => "special";
    }

    public class Calculator
    {
        public int Negate(int x) => -x;

        public int Add(int a, int b) => a + b;

        public int Add(int a, int b, int c) => a + b + c;

        public int Add(int a, int b, int c, int d) => a + b + c + d;

        public string Format(double value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture) + "!";

        public string Format(string? value) => (value ?? "null") + "!";

        public string Pick(DayOfWeek day, int? maybe) => $"{day}:{maybe?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}";

        public virtual string Kind() => "calculator";

        public long Widen(long value) => value;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        public int Divide(int by) => 1 / by;

        public static int ParseStatic(string text) => int.Parse(text);

        private string Hidden() => "secret";
    }

    public sealed class Profile
    {
        public string Name { get; set; } = "";

        public List<string> Tags { get; set; } = [];

        public void AddTag(string tag) => Tags.Add(tag);

        public int TagCount() => Tags.Count;
    }

    public sealed class Picky
    {
        private int _value;

        public int Value
        {
            get => _value;
            set => _value = value >= 0 || !DotNetIsolatorHost.IsInSandbox ? value : throw new ArgumentOutOfRangeException(nameof(value), "negative values are not accepted");
        }
    }

    public sealed record Shape(string Name, double[] Sizes)
    {
        public bool Equals(Shape? other) => other is not null && other.Name == Name && other.Sizes.SequenceEqual(Sizes);

        public override int GetHashCode() => Name.GetHashCode();
    }

    public sealed class Secretive
    {
        private int _hidden;

        public static Secretive Create(int value) => new() { _hidden = value };

        public int Reveal() => _hidden;
    }

    public sealed class Echo
    {
        public T Same<T>(T value) => value;

        public DateTime Same(DateTime value) => value;

        public TimeSpan Same(TimeSpan value) => value;

        public Guid Same(Guid value) => value;

        public ConsoleColor Same(ConsoleColor value) => value;

        public int? Same(int? value) => value;

        public int CountEntries(Dictionary<string, object> entries) => entries.Count;

        public string Lookup(Dictionary<string, object> entries) => (string)entries["s"] + (entries["b"] is true ? "" : "?");

        public int[] Reverse(int[] values) => values.Reverse().ToArray();

        public Shape Upper(Shape shape) => shape with { Name = shape.Name.ToUpperInvariant() };

        public Secretive MakeSecretive() => Secretive.Create(99);
    }

    public sealed class Registry
    {
        private readonly List<Counter> _items = [];

        public void Add(Counter counter) => _items.Add(counter);

        public bool Contains(Counter counter) => _items.Any(c => ReferenceEquals(c, counter));

        public int FirstValue() => _items[0].Get();

        public Counter CreateCounter(int start)
        {
            var counter = new Counter(start);
            _items.Add(counter);
            return counter;
        }
    }

    public sealed class Tracked
    {
        private static readonly List<WeakReference> Instances = [];

        public Tracked() => Instances.Add(new WeakReference(this));

        public static void Reset() => Instances.Clear();

        public static int CountAlive()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            return Instances.Count(w => w.IsAlive);
        }
    }
}
